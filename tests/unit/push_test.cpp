// Router pushes: signature, status classification, backoff, and the counters' shape.
#include "push.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "api.h"

namespace lagwatch {
namespace {

using namespace std::chrono_literals;

TEST(HmacSha256, MatchesRfc4231Vectors) {
  // RFC 4231 test cases 1, 2 and 6 (a key longer than the block size is hashed first).
  EXPECT_EQ(hmac_sha256_hex(std::string(20, '\x0b'), "Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(hmac_sha256_hex(std::string(131, '\xaa'),
                            "Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(HmacSha256, EmptyKeyAndData) {
  EXPECT_EQ(hmac_sha256_hex("", ""),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(SignPush, SignsTimestampDotBody) {
  const std::string body = R"({"cluster":"orders","generation":42})";
  // Python: hmac.new(b"s3cret", b"1764014400." + body, hashlib.sha256).hexdigest()
  EXPECT_EQ(sign_push("s3cret", "1764014400", body),
            "sha256=84114960c7e1e1e0c6ee41fa7edc0f19bcd4a3d6ae1704cf46ab28c24ec273a0");
  EXPECT_EQ(sign_push("Jefe", "what do ya want for nothing?", ""),
            "sha256=" + hmac_sha256_hex("Jefe", "what do ya want for nothing?."));
}

TEST(SignPush, TimestampIsCovered) {
  const std::string body = R"({"cluster":"orders"})";
  EXPECT_NE(sign_push("s3cret", "1764014400", body), sign_push("s3cret", "1764014401", body));
  EXPECT_NE(sign_push("s3cret", "1764014400", body), sign_push("s3cret2", "1764014400", body));
}

TEST(ClassifyPushStatus, SuccessRetryOrPermanent) {
  struct Case {
    long status;
    PushOutcome want;
  };
  const Case cases[] = {
      {200, PushOutcome::success},   {202, PushOutcome::success},   {204, PushOutcome::success},
      {0, PushOutcome::retry},       {408, PushOutcome::retry},     {429, PushOutcome::retry},
      {500, PushOutcome::retry},     {502, PushOutcome::retry},     {503, PushOutcome::retry},
      {504, PushOutcome::retry},     {301, PushOutcome::permanent}, {307, PushOutcome::permanent},
      {400, PushOutcome::permanent}, {401, PushOutcome::permanent}, {403, PushOutcome::permanent},
      {404, PushOutcome::permanent}, {413, PushOutcome::permanent}, {422, PushOutcome::permanent},
  };
  for (const auto& c : cases)
    EXPECT_EQ(classify_push_status(c.status), c.want) << "status " << c.status;
}

TEST(PushBackoff, DoublesFromBaseToCapWithFullJitterAndHonoursRetryAfter) {
  struct Case {
    int failures;
    std::optional<Duration> retry_after;
    double jitter;
    Duration want;
  };
  const Case cases[] = {
      // Ceiling 250 ms, 500 ms, 1 s, 2 s, ... ; the jitter picks a point below it.
      {1, std::nullopt, 1.0, 250ms},
      {1, std::nullopt, 0.5, 125ms},
      {2, std::nullopt, 1.0, 500ms},
      {3, std::nullopt, 1.0, 1s},
      {5, std::nullopt, 0.5, 2s},
      {8, std::nullopt, 1.0, 30s},  // 32 s capped at 30 s
      {8, std::nullopt, 0.5, 15s},
      {1000, std::nullopt, 1.0, 30s},  // no overflow after a long outage
      {3, std::nullopt, 0.0, 0ms},     // full jitter reaches down to no wait
      {0, std::nullopt, 1.0, 250ms},   // nonsense counts behave as the first failure
      {1, std::nullopt, 7.0, 250ms},   // jitter outside [0, 1] is clamped
      // Retry-After is a floor: never earlier than the router asked, later when backoff says.
      {1, 2s, 0.5, 2s},
      {8, 2s, 1.0, 30s},
      {1, 0s, 0.5, 125ms},
      {1, 24h, 0.5, 5min},  // capped: a bogus header must not silence a router for a day
  };
  for (const auto& c : cases) {
    EXPECT_EQ(push_backoff(c.failures, c.retry_after, c.jitter), c.want)
        << "failures=" << c.failures
        << " retry_after=" << (c.retry_after ? format_duration(*c.retry_after) : "none")
        << " jitter=" << c.jitter;
  }
}

TEST(PushBackoff, NeverExceedsCapWithoutRetryAfter) {
  for (int failures = 1; failures < 100; ++failures)
    EXPECT_LE(push_backoff(failures, std::nullopt, 0.999999), kPushBackoffCap) << failures;
}

ClusterSnapshot orders_snapshot() {
  ClusterSnapshot s;
  s.name = "orders";
  s.list.generation = 1764014400123;
  s.list.primary = ReplicaList::Primary{"pg-a", "10.0.0.1:5432", std::nullopt, ""};
  ReplicaListEntry e;
  e.node = "pg-b";
  e.address = "10.0.0.2:5432";
  e.state = Health::ok;
  e.lag_seconds = 0.12;
  s.list.replicas.push_back(e);
  return s;
}

std::string header(const PushRequest& r, const std::string& name) {
  for (const auto& h : r.headers)
    if (h.starts_with(name + ": ")) return h.substr(name.size() + 2);
  return "<absent>";
}

TEST(BuildPush, BodyIsTheReplicaListAndHeadersNameClusterGenerationAndTime) {
  const auto snapshot = orders_snapshot();
  const WallTime now = WallTime{} + 1764014400s + 999ms;  // whole seconds, rounded down
  const PushRequest r = build_push(snapshot, std::nullopt, now);
  EXPECT_EQ(r.body, replica_list_json(snapshot, snapshot.list).dump());
  EXPECT_EQ(header(r, "Content-Type"), "application/json");
  EXPECT_EQ(header(r, "X-Lagwatch-Cluster"), "orders");
  EXPECT_EQ(header(r, "X-Lagwatch-Generation"), "1764014400123");
  EXPECT_EQ(header(r, "X-Lagwatch-Timestamp"), "1764014400");
  EXPECT_EQ(header(r, "X-Lagwatch-Signature"), "<absent>") << "no secret, no signature";
}

TEST(BuildPush, SignsWithTheTargetSecret) {
  const auto snapshot = orders_snapshot();
  const PushRequest r =
      build_push(snapshot, Secret{"secret_file test", "s3cret"}, WallTime{} + 1764014400s);
  EXPECT_EQ(header(r, "X-Lagwatch-Signature"), sign_push("s3cret", "1764014400", r.body));
  for (const auto& h : r.headers) EXPECT_EQ(h.find("s3cret"), std::string::npos) << h;
}

double counter_value(const std::vector<prometheus::MetricFamily>& families,
                     const std::string& router, const std::string& result) {
  for (const auto& f : families)
    for (const auto& m : f.metric) {
      std::map<std::string, std::string> labels;
      for (const auto& l : m.label) labels[l.name] = l.value;
      if (labels["router"] == router && labels["result"] == result) return m.counter.value;
    }
  return -1;
}

TEST(RouterPusher, ExportsEveryResultPerRouterFromTheStartNamedNotByUrl) {
  FakeClock clock;
  RoutingPush a;
  a.name = "edge";
  a.url = "http://127.0.0.1:9/lagwatch?token=hunter2";
  RoutingPush b = a;  // same name: one set of series, not duplicates
  RoutingPush c;
  c.name = "haproxy-1";
  c.url = "http://127.0.0.1:9/other";
  RouterPusher pusher({a, b, c}, clock);
  const auto families = pusher.Collect();
  ASSERT_EQ(families.size(), 1u);
  EXPECT_EQ(families[0].name, "lagwatch_router_pushes_total");
  EXPECT_EQ(families[0].type, prometheus::MetricType::Counter);
  EXPECT_EQ(families[0].metric.size(), 6u);
  for (const std::string router : {"edge", "haproxy-1"})
    for (const std::string result : {"success", "retry", "failure"})
      EXPECT_EQ(counter_value(families, router, result), 0) << router << " " << result;
  for (const auto& m : families[0].metric)
    for (const auto& l : m.label) EXPECT_EQ(l.value.find("127.0.0.1"), std::string::npos);
  pusher.stop();
  pusher.stop();  // idempotent
}

TEST(RouterPusher, NoTargetsNoFamily) {
  FakeClock clock;
  RouterPusher pusher({}, clock);
  EXPECT_TRUE(pusher.Collect().empty());
}

}  // namespace
}  // namespace lagwatch
