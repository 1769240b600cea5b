// Fuzzes the MySQL collector's pure half as collect_statements() drives it: result rows →
// parse_replica_status, mysql_role, parse_binary_logs → a NodeSample; then two cycles of
// evaluate_cluster and every HTTP answer built from the snapshot, since a server's text (an
// error message, a channel name, a GTID set) ends up in JSON, HTML and metric labels.
// std::runtime_error from a parser is a malformed row: the collector counts it as a query error.
// Anything else thrown, a crash or a sanitizer report is a finding.
//
// Input: rows in the mysql client's vertical (\G) layout, "Column: value" per line, NULL for
// NULL; a line starting with '*' begins the next row. The first row holds the variables
// (read_only, super_read_only, version, gtid_position); a row with Log_name is a SHOW BINARY
// LOGS row of the primary db1; every other row is a replica status row of db2.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

#include "api.h"
#include "evaluate.h"
#include "mysql/mysql_collector.h"
#include "snapshot_store.h"

namespace {

using namespace lagwatch;

std::vector<MysqlRow> rows_of(std::string_view text) {
  std::vector<MysqlRow> rows(1);
  while (!text.empty()) {
    std::string_view line = text.substr(0, text.find('\n'));
    text.remove_prefix(std::min(text.size(), line.size() + 1));
    if (!line.empty() && line.front() == '*') {
      rows.emplace_back();
      continue;
    }
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    std::optional<std::string> cell;
    if (value != "NULL") cell = std::string(value);
    rows.back().insert_or_assign(std::string(line.substr(0, colon)), std::move(cell));
  }
  return rows;
}

std::string cell(const MysqlRow& row, const char* column) {
  const auto it = row.find(column);
  return it == row.end() ? "" : it->second.value_or("");
}

ClusterConfig cluster_config() {
  ClusterConfig c;
  c.name = "shop";
  c.engine = "mysql";
  for (const char* name : {"db1", "db2"}) {
    NodeConfig node;
    node.name = name;
    node.address = std::string(name) + ":3306";
    node.thresholds.lag_seconds_warning = 1;
    node.thresholds.lag_seconds_critical = 5;
    c.nodes.push_back(node);
  }
  return c;
}

// What the server answers to GET `target`; aborts (a finding) if it never answers.
HttpResponse get(const Api& api, const std::string& target) {
  HttpRequest request;
  request.method = "GET";
  request.target = target;
  request.path = target;
  std::optional<HttpResponse> answer;
  api.handle(request, [&](HttpResponse r) { answer = std::move(r); });
  if (!answer) {
    std::fprintf(stderr, "mysql_status_fuzz: no answer to GET %s\n", target.c_str());
    std::abort();
  }
  return *answer;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const ClusterConfig cluster = cluster_config();
  static SnapshotStore store;
  static const bool expected = (store.expect({"shop"}), true);
  (void)expected;
  static ListWatchers watchers;
  static const Api api(store, watchers, {});

  const std::vector<MysqlRow> rows =
      rows_of(std::string_view(reinterpret_cast<const char*>(data), size));
  const MysqlRow& variables = rows.front();
  const std::string version = cell(variables, "version");
  (void)is_mariadb_version(version);
  (void)mysql_replica_status_statement(version);

  NodeSample primary, replica;
  primary.role = Role::primary;
  primary.writable = true;
  primary.gtid_position = cell(variables, "gtid_position");
  std::vector<MysqlRow> binary_logs;
  try {
    std::vector<ReplicationChannel> channels;
    for (std::size_t i = 1; i < rows.size(); ++i) {
      if (rows[i].contains("Log_name")) {
        binary_logs.push_back(rows[i]);
        continue;
      }
      channels.push_back(parse_replica_status(rows[i]));
      if (channels.back().gtid_position.empty()) channels.back().gtid_position = primary.gtid_position;
    }
    const MysqlRole role =
        mysql_role(channels, cell(variables, "read_only") == "1", cell(variables, "super_read_only") == "1");
    replica.role = role.role;
    replica.writable = role.writable;
    if (role.role == Role::replica) replica.channels = std::move(channels);
  } catch (const std::runtime_error& e) {
    replica.error = CollectionError::query;
    replica.error_message = e.what();
  }
  try {
    MysqlBinaryLogs logs = parse_binary_logs(binary_logs);
    primary.segments = std::move(logs.segments);
    primary.current_position = std::move(logs.current_position);
  } catch (const std::runtime_error& e) {
    primary.error = CollectionError::query;
    primary.error_message = e.what();
  }

  // Two cycles a second apart, so the timeline holds the primary's position when lag is read.
  ClusterHistory history;
  const std::vector<CollectionStats> stats(2);
  const WallTime start{std::chrono::seconds(1'800'000'000)};
  std::shared_ptr<const ClusterSnapshot> snapshot;
  for (std::uint64_t cycle = 1; cycle <= 2; ++cycle) {
    const WallTime now = start + std::chrono::seconds(cycle);
    primary.sampled_at = replica.sampled_at = now;
    snapshot = std::make_shared<const ClusterSnapshot>(
        evaluate_cluster(cluster, {primary, replica}, stats, history, cycle, now));
  }
  store.publish(snapshot);

  for (const char* target : {"/api/v1/clusters", "/api/v1/clusters/shop/replicas", "/metrics", "/",
                             "/api/v1/clusters/shop/nodes/db2/health"}) {
    const HttpResponse r = get(api, target);
    // 503 is the health check's "fail" verdict; anything else but 200 is wrong.
    if (r.status != 200 && !(r.status == 503 && std::string_view(target).ends_with("/health"))) {
      std::fprintf(stderr, "mysql_status_fuzz: GET %s -> %d %s\n", target, r.status, r.body.c_str());
      std::abort();
    }
  }
  return 0;
}
