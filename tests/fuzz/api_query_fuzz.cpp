// Fuzzes the HTTP API with request targets: Api::handle, the function behind every endpoint,
// over fixed in-memory snapshots (a PostgreSQL and a MariaDB/MySQL cluster, and one with no
// cycle yet); no sockets. A bad path or parameter must be answered (4xx) exactly once with a
// body that is valid JSON when it says so; a throw (which the server would turn into a 500),
// no answer, two answers, a crash or a sanitizer report is a finding.
//
// Input: a request target ("/api/v1/clusters/orders/replicas?max_lag=1s&index=5"), optionally
// after a method and a space ("HEAD /metrics"). The server percent-decodes the path and query
// (libcurl) before the handler sees them; here the fuzzer's bytes are the decoded text, so
// every byte value reaches the handler. A key given twice keeps the last value, as there.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string_view>

#include "api.h"
#include "long_poll.h"
#include "snapshot_store.h"

namespace {

using namespace lagwatch;

constexpr std::uint64_t kGeneration = 1'764'000'000'000;
const WallTime kNow{std::chrono::milliseconds(kGeneration + 500)};

NodeStatus primary(std::string name, std::optional<Position> position, std::string gtid) {
  NodeStatus n;
  n.name = std::move(name);
  n.address = n.name + ":5432";
  n.up = true;
  n.role = Role::primary;
  n.writable = true;
  n.sampled_at = kNow;
  n.position = std::move(position);
  n.gtid_position = std::move(gtid);
  n.state = Health::ok;
  return n;
}

NodeStatus replica(std::string name, double lag, std::optional<Position> position, std::string gtid) {
  NodeStatus n;
  n.name = std::move(name);
  n.address = n.name + ":5432";
  n.up = true;
  n.role = Role::replica;
  n.sampled_at = kNow;
  ChannelStatus c;
  c.lag_seconds = lag;
  c.lag_bytes = static_cast<std::uint64_t>(lag * 1000);
  c.connected = true;
  c.applying = true;
  c.position = std::move(position);
  c.position_sampled_at = kNow;
  c.gtid_position = std::move(gtid);
  c.state = lag < 1 ? Health::ok : Health::warning;
  n.channels.push_back(c);
  n.main_channel = 0;
  n.state = c.state;
  n.routable = true;
  return n;
}

ReplicaListEntry entry(const NodeStatus& n) {
  const ChannelStatus& c = *n.main();
  return {n.name, n.address, n.state, c.lag_seconds, c.lag_bytes, c.position, c.gtid_position,
          c.position_sampled_at, 90, false};
}

std::shared_ptr<ClusterSnapshot> snapshot(std::string name, std::string engine,
                                          std::vector<NodeStatus> nodes) {
  auto s = std::make_shared<ClusterSnapshot>();
  s->name = std::move(name);
  s->engine = std::move(engine);
  s->cycle = 42;
  s->evaluated_at = kNow;
  s->nodes = std::move(nodes);
  s->primaries = 1;
  s->primary = s->nodes.front().name;
  s->state = Health::warning;
  s->list.generation = kGeneration;
  s->list.generated_at = kNow;
  const NodeStatus& p = s->nodes.front();
  s->list.primary = ReplicaList::Primary{p.name, p.address, p.position, p.gtid_position};
  for (const auto& n : s->nodes)
    if (n.routable) s->list.replicas.push_back(entry(n));
  return s;
}

struct Fixture {
  SnapshotStore store;
  ListWatchers watchers;
  // The same clusters one generation on: publishing them wakes a parked long poll.
  std::vector<std::shared_ptr<const ClusterSnapshot>> now, next;
  Api api{store, watchers, ApiOptions{{}, [] { return std::string(); }}};

  Fixture() {
    store.expect({"orders", "shop", "idle"});
    auto orders = snapshot("orders", "postgres",
                           {primary("pg1", parse_pg_lsn("16/B374D848"), ""),
                            replica("pg2", 0.25, parse_pg_lsn("16/B374D000"), ""),
                            replica("pg3", 3.5, parse_pg_lsn("16/B0000000"), "")});
    NodeStatus down;
    down.name = "pg4";
    down.address = "pg4:5432";
    down.error = CollectionError::timeout;
    down.error_message = "collection exceeded its timeout";
    orders->nodes.push_back(down);
    auto shop = snapshot(
        "shop", "mysql",
        {primary("db1", mysql_binlog_position("mysql-bin.000042", 1234), "0-1-100"),
         replica("db2", 0.1, mysql_binlog_position("mysql-bin.000042", 1000), "0-1-99,1-2-7"),
         replica("db3", 2, mysql_binlog_position("mysql-bin.000041", 1000),
                 "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7-9")});
    for (const auto& s : {orders, shop}) {
      store.publish(s);
      watchers.on_publish(s);
      now.push_back(s);
      auto later = std::make_shared<ClusterSnapshot>(*s);
      later->list.generation = kGeneration + 1;
      next.push_back(later);
    }
  }
};

struct Answer {
  std::mutex mutex;
  std::condition_variable cv;
  int calls = 0;
  HttpResponse response;
};

HttpRequest request_of(std::string_view input) {
  HttpRequest r;
  r.method = "GET";
  if (const std::size_t space = input.find(' '); space != std::string_view::npos && space <= 7 &&
                                                 !input.starts_with("/")) {
    r.method = std::string(input.substr(0, space));
    input.remove_prefix(space + 1);
  }
  r.target = std::string(input);
  const std::size_t question = input.find('?');
  r.path = std::string(input.substr(0, question));
  std::string_view query = question == std::string_view::npos ? "" : input.substr(question + 1);
  while (!query.empty()) {
    const std::string_view pair = query.substr(0, query.find('&'));
    query.remove_prefix(std::min(query.size(), pair.size() + 1));
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    r.query.insert_or_assign(std::string(pair.substr(0, eq)),
                             eq == std::string_view::npos ? "" : std::string(pair.substr(eq + 1)));
  }
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixture fixture;
  const HttpRequest request = request_of(std::string_view(reinterpret_cast<const char*>(data), size));

  auto answer = std::make_shared<Answer>();
  fixture.api.handle(request, [answer](HttpResponse r) {
    std::lock_guard lock(answer->mutex);
    if (++answer->calls == 1) answer->response = std::move(r);
    answer->cv.notify_all();
  });
  {
    std::unique_lock lock(answer->mutex);
    if (answer->calls == 0) {
      // A long poll on the current generation: the next generation answers it (or its wait
      // ran out meanwhile); then the store's generation is current again.
      lock.unlock();
      for (const auto& s : fixture.next) fixture.watchers.on_publish(s);
      for (const auto& s : fixture.now) fixture.watchers.on_publish(s);
      lock.lock();
      answer->cv.wait(lock, [&] { return answer->calls > 0; });
    }
  }
  std::lock_guard lock(answer->mutex);
  const HttpResponse& r = answer->response;
  const char* wrong = nullptr;
  if (answer->calls != 1) wrong = "answered more than once";
  // 501: reload unavailable; 503: no cycle yet, a failing health check, too many long polls.
  else if (r.status < 200 || r.status >= 600 || (r.status >= 500 && r.status != 501 && r.status != 503))
    wrong = "unexpected status";
  else if (r.content_type == "application/json" && !nlohmann::json::accept(r.body))
    wrong = "a JSON answer that is not JSON";
  if (wrong != nullptr) {
    std::fprintf(stderr, "api_query_fuzz: %s: %s %s -> %d %s\n", wrong, request.method.c_str(),
                 request.target.c_str(), r.status, r.body.c_str());
    std::abort();
  }
  return 0;
}
