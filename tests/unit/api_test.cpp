// The HTTP API's answers to what clients and servers send it, driven through Api::handle with
// in-memory snapshots (no sockets). Cases found by tests/fuzz/api_query_fuzz are pinned here.
#include "api.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>

#include "long_poll.h"
#include "snapshot_store.h"

namespace lagwatch {
namespace {

class ApiTest : public ::testing::Test {
 protected:
  ApiTest() {
    store_.expect({"shop"});
    auto snapshot = std::make_shared<ClusterSnapshot>();
    snapshot->name = "shop";
    snapshot->engine = "mysql";
    snapshot->cycle = 1;
    NodeStatus replica;
    replica.name = "db2";
    replica.up = true;
    replica.role = Role::replica;
    ChannelStatus channel;
    // A server's error text is not necessarily UTF-8 (a latin1 table name, a binlog file name).
    channel.last_error = "SQL thread: Error 'Duplicate entry 'caf\xe9' for key 'PRIMARY''";
    replica.channels.push_back(channel);
    replica.main_channel = 0;
    snapshot->nodes.push_back(replica);
    store_.publish(snapshot);
  }

  HttpResponse get(const std::string& path, std::map<std::string, std::string> query = {}) {
    HttpRequest request;
    request.method = "GET";
    request.target = path;
    request.path = path;
    request.query = std::move(query);
    std::optional<HttpResponse> answer;
    api_.handle(request, [&](HttpResponse r) { answer = std::move(r); });
    EXPECT_TRUE(answer) << "no answer to " << path;
    if (!answer) return HttpResponse{0, "", {}, "", {}};
    // The body as the server sends it: `body`, then the shared pieces.
    for (const auto& piece : answer->shared_body) answer->body += *piece;
    answer->shared_body.clear();
    return *answer;
  }

  SnapshotStore store_;
  ListWatchers watchers_;
  Api api_{store_, watchers_, {}};
};

// Found by the fuzzer: a percent-decoded path or parameter with bytes that are not UTF-8 made
// nlohmann::json::dump() throw, and the server answered 500 instead of 404 or 400.
TEST_F(ApiTest, PathThatIsNotUtf8IsA404WithValidJson) {
  const HttpResponse r = get("/api/v1/clu\xf3ters");
  EXPECT_EQ(r.status, 404) << r.body;
  ASSERT_TRUE(nlohmann::json::accept(r.body)) << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"], "no such endpoint: /api/v1/clu\uFFFDters");
}

TEST_F(ApiTest, ClusterNameThatIsNotUtf8IsA404) {
  const HttpResponse r = get("/api/v1/clusters/sh\xffop/replicas");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_TRUE(nlohmann::json::accept(r.body)) << r.body;
}

TEST_F(ApiTest, ParameterThatIsNotUtf8IsA400NamingIt) {
  for (const char* name : {"max_lag", "wait", "index", "min_position"}) {
    const HttpResponse r = get("/api/v1/clusters/shop/replicas", {{name, "1\xc3("}});
    EXPECT_EQ(r.status, 400) << name << ": " << r.body;
    ASSERT_TRUE(nlohmann::json::accept(r.body)) << r.body;
    EXPECT_EQ(nlohmann::json::parse(r.body)["parameter"], name);
  }
  const HttpResponse r = get("/api/v1/clusters/shop/nodes/db2/health", {{"max_lag", "\x80s"}});
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_TRUE(nlohmann::json::accept(r.body)) << r.body;
}

TEST_F(ApiTest, ServerErrorTextThatIsNotUtf8StillListsTheClusters) {
  const HttpResponse r = get("/api/v1/clusters");
  EXPECT_EQ(r.status, 200) << r.body;
  ASSERT_TRUE(nlohmann::json::accept(r.body)) << r.body;
  const auto last_error =
      nlohmann::json::parse(r.body)["clusters"][0]["nodes"][0]["channels"][0]["last_error"];
  EXPECT_EQ(last_error, "SQL thread: Error 'Duplicate entry 'caf\uFFFD' for key 'PRIMARY''");
}

}  // namespace
}  // namespace lagwatch
