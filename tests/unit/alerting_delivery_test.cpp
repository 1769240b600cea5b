// The notifier's delivery edges that need no network: client-side rate limits, the atomic
// state file, what a start does with the state a previous run left, and the metrics' shape.
#include "notifier.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace lagwatch {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "lagwatch_delivery_test.XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

 private:
  fs::path dir_;
};

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(RateLimiter, SlackSendsOnePerSecond) {
  RateLimiter slack(kSlackPerSecond, kSlackBurst);
  const SteadyTime t{std::chrono::hours(1)};
  EXPECT_EQ(slack.available_at(t), t);
  slack.take(t);
  EXPECT_EQ(slack.available_at(t), t + 1s);
  EXPECT_EQ(slack.available_at(t + 400ms), t + 1s);
  EXPECT_EQ(slack.available_at(t + 1s), t + 1s);
  slack.take(t + 1s);
  EXPECT_EQ(slack.available_at(t + 1s), t + 2s);
}

TEST(RateLimiter, PagerDutyNeverPasses120EventsInAnyMinute) {
  RateLimiter pd(kPagerDutyPerSecond, kPagerDutyBurst);
  const SteadyTime start{std::chrono::hours(1)};
  SteadyTime t = start;
  int sent = 0;
  while (t < start + 60s) {
    t = pd.available_at(t);
    if (t >= start + 60s) break;
    pd.take(t);
    ++sent;
  }
  EXPECT_LE(sent, 120);
  EXPECT_GE(sent, 115) << "and not much below";
}

TEST(RateLimiter, OverdrawnByARaceWaitsLonger) {
  RateLimiter slack(1.0, 1.0);
  const SteadyTime t{std::chrono::hours(1)};
  slack.take(t);
  slack.take(t);  // two receivers on one webhook passed available_at() together
  EXPECT_EQ(slack.available_at(t), t + 2s);
}

TEST(StateFile, WrittenAtomicallyReadableOnlyByItsOwner) {
  TempDir dir;
  const std::string path = dir.path("alerts.json");
  write_file_atomically(path, "one\n");
  write_file_atomically(path, "two\n");
  EXPECT_EQ(read(path), "two\n");
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(StateFile, UnwritableDirectorySaysWhere) {
  TempDir dir;
  const std::string path = dir.path("missing/alerts.json");
  try {
    write_file_atomically(path, "x");
    FAIL() << "wrote into a missing directory";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()),
              "cannot write " + path + ": open " + path + ".tmp: No such file or directory");
  }
}

AlertingConfig alerting(const TempDir& dir) {
  AlertingConfig config;
  config.state_file = dir.path("alerts.json");
  config.status_page_url = "http://127.0.0.1:9817/";
  AlertReceiver pd;
  pd.name = "oncall";
  pd.type = ReceiverType::pagerduty;
  // A closed port: deliveries fail and are retried; none of these tests waits for one.
  pd.url = Secret{"url", "http://127.0.0.1:9/v2/enqueue"};
  pd.routing_key = Secret{"routing_key_env X", "R0UT1NGKEY"};
  pd.timeout = 200ms;
  config.receivers.push_back(pd);
  return config;
}

std::vector<ClusterConfig> orders(std::vector<std::string> nodes) {
  ClusterConfig c;
  c.name = "orders";
  c.engine = "postgres";
  for (auto& n : nodes) c.nodes.push_back(NodeConfig{n, "", "", std::nullopt, n, {}, 0, 0});
  return {c};
}

// A state a previous run left: lag_critical on pg2 firing and told to "oncall".
const char* kPreviousState = R"({"version":1,"alerts":[{
  "dedup_key":"lagwatch:orders:pg2:lag_critical","condition":"lag_critical","cluster":"orders",
  "node":"pg2","channel":"","severity":"critical","firing_since":"2026-11-24T20:00:30.000Z",
  "resolved_at":null,"facts":{"summary":"Replica orders/pg2 lags 9.0s"},
  "receivers":{"oncall":{"due":true,"told":"firing","told_at":"2026-11-24T20:00:30.000Z"},
               "removed":{"due":true,"told":"firing","told_at":"2026-11-24T20:00:30.000Z"}}}]})";

TEST(NotifierStart, KeepsWhatWasToldAndForgetsRemovedReceivers) {
  TempDir dir;
  std::ofstream(dir.path("alerts.json")) << kPreviousState;
  FakeClock clock;
  Notifier notifier(alerting(dir), orders({"pg1", "pg2"}), clock);
  notifier.stop();
  const auto state = nlohmann::json::parse(read(dir.path("alerts.json")));
  ASSERT_EQ(state["alerts"].size(), 1u) << state.dump(2);
  EXPECT_EQ(state["alerts"][0]["resolved_at"], nullptr) << "still firing until a snapshot says";
  EXPECT_EQ(state["alerts"][0]["receivers"],
            (nlohmann::json{{"oncall",
                             {{"due", true},
                              {"told", "firing"},
                              {"told_at", "2026-11-24T20:00:30.000Z"},
                              {"owed", nlohmann::json::array()}}}}));
}

TEST(NotifierStart, ResolvesAlertsOfNodesNoLongerConfigured) {
  TempDir dir;
  std::ofstream(dir.path("alerts.json")) << kPreviousState;
  FakeClock clock(WallTime{} + std::chrono::seconds(1795550400) + 1h);
  Notifier notifier(alerting(dir), orders({"pg1", "pg3"}), clock);
  notifier.stop();
  const auto state = nlohmann::json::parse(read(dir.path("alerts.json")));
  ASSERT_EQ(state["alerts"].size(), 1u) << "the resolve is still owed";
  EXPECT_EQ(state["alerts"][0]["resolved_at"], "2026-11-24T21:00:00.000Z");
}

TEST(NotifierStart, CorruptStateIsMovedAsideAndStartsEmpty) {
  TempDir dir;
  std::ofstream(dir.path("alerts.json")) << "{not json";
  FakeClock clock;
  Notifier notifier(alerting(dir), orders({"pg1"}), clock);
  notifier.stop();
  EXPECT_EQ(read(dir.path("alerts.json.corrupt")), "{not json");
  EXPECT_EQ(nlohmann::json::parse(read(dir.path("alerts.json"))),
            (nlohmann::json{{"version", 1}, {"alerts", nlohmann::json::array()}}));
}

TEST(NotifierStart, UnwritableStateFileRefusesToStart) {
  TempDir dir;
  AlertingConfig config = alerting(dir);
  config.state_file = dir.path("missing/alerts.json");
  FakeClock clock;
  EXPECT_THROW(Notifier(config, orders({"pg1"}), clock), std::runtime_error);
}

TEST(NotifierMetrics, NamedByReceiverNeverByUrlOrKey) {
  TempDir dir;
  FakeClock clock;
  Notifier notifier(alerting(dir), orders({"pg1"}), clock);
  notifier.stop();
  const auto families = notifier.Collect();
  ASSERT_EQ(families.size(), 3u);
  EXPECT_EQ(families[0].name, "lagwatch_notifications_total");
  ASSERT_EQ(families[0].metric.size(), 3u);
  for (const auto& m : families[0].metric) {
    EXPECT_EQ(m.label[0].name, "receiver");
    EXPECT_EQ(m.label[0].value, "oncall");
    EXPECT_EQ(m.label[1].name, "result");
  }
  EXPECT_EQ(families[1].name, "lagwatch_alerts_firing");
  EXPECT_EQ(families[1].metric.size(), kConditions.size());
  EXPECT_EQ(families[2].name, "lagwatch_alert_state_write_failures_total");
}

}  // namespace
}  // namespace lagwatch
