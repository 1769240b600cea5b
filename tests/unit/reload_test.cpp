// Reload: which clusters Scheduler::reconfigure keeps (state and all) and which it rebuilds,
// and which restart-only settings a reload names as not applied. No servers: a collector that
// answers at once stands in for the databases.
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "reloader.h"
#include "scheduler.h"
#include "snapshot_store.h"

namespace lagwatch {
namespace {

using namespace std::chrono_literals;

// Answers every collection at once, as a node that refuses connections.
class InstantCollector final : public Collector {
 public:
  NodeSample collect(const Clock& clock) override {
    NodeSample s;
    s.sampled_at = clock.now();
    s.error = CollectionError::connect;
    s.error_message = "refused";
    return s;
  }
  void abort() override {}
};

// A registry whose "fake" engine counts the collectors it builds per cluster: a cluster whose
// count goes up was rebuilt by reconfigure(), one whose count stays was kept.
struct CountingRegistry {
  CollectorRegistry registry;
  std::mutex mutex;
  std::map<std::string, int> built;
  std::string refuse;  // a cluster whose collectors throw when built

  CountingRegistry() {
    registry.add("fake", [this](const CollectorContext& c) -> std::unique_ptr<Collector> {
      std::lock_guard lock(mutex);
      if (c.cluster->name == refuse) throw std::runtime_error("bad dsn");
      ++built[c.cluster->name];
      return std::make_unique<InstantCollector>();
    });
  }
  int count(const std::string& cluster) {
    std::lock_guard lock(mutex);
    return built[cluster];
  }
};

ClusterConfig cluster(const std::string& name, int line, Duration interval = 1s) {
  ClusterConfig c;
  c.name = name;
  c.engine = "fake";
  c.interval = interval;
  c.timeout = interval / 2;
  c.line = line;
  c.column = 1;
  for (const char* n : {"a", "b"}) {
    NodeConfig node;
    node.name = n;
    node.dsn = std::string("fake://") + n;
    node.line = line + 4;
    node.column = 1;
    c.nodes.push_back(node);
  }
  return c;
}

TEST(SchedulerReconfigure, KeepsClustersWhoseSettingsOnlyMovedInTheFile) {
  CountingRegistry r;
  SystemClock clock;
  SnapshotStore store;
  Scheduler scheduler({cluster("orders", 1), cluster("users", 20)}, r.registry, clock, store);
  ASSERT_EQ(r.count("orders"), 2);
  ASSERT_EQ(r.count("users"), 2);

  // Both clusters moved down the file and swapped places: same settings, nothing rebuilt.
  scheduler.reconfigure({cluster("users", 3), cluster("orders", 40)}, r.registry);
  EXPECT_EQ(r.count("orders"), 2);
  EXPECT_EQ(r.count("users"), 2);
}

TEST(SchedulerReconfigure, RebuildsOnlyTheClusterWhoseSettingsChanged) {
  CountingRegistry r;
  SystemClock clock;
  SnapshotStore store;
  Scheduler scheduler({cluster("orders", 1), cluster("users", 20)}, r.registry, clock, store);

  auto changed = cluster("users", 20);
  changed.nodes[1].thresholds.lag_seconds_critical = 2.0;  // one node's threshold
  scheduler.reconfigure({cluster("orders", 1), changed}, r.registry);
  EXPECT_EQ(r.count("orders"), 2) << "unchanged cluster kept";
  EXPECT_EQ(r.count("users"), 4) << "changed cluster rebuilt";

  auto rise = changed;
  rise.routing.rise = 5;  // a routing policy key
  scheduler.reconfigure({cluster("orders", 1), rise}, r.registry);
  EXPECT_EQ(r.count("orders"), 2);
  EXPECT_EQ(r.count("users"), 6);

  auto rotated = cluster("orders", 1);
  rotated.nodes[0].password = Secret{"password_file /run/pg", "new"};  // a rotated password
  scheduler.reconfigure({rotated, rise}, r.registry);
  EXPECT_EQ(r.count("orders"), 4);
  EXPECT_EQ(r.count("users"), 6);
}

TEST(SchedulerReconfigure, AFailedBuildChangesNothing) {
  CountingRegistry r;
  SystemClock clock;
  SnapshotStore store;
  Scheduler scheduler({cluster("orders", 1)}, r.registry, clock, store);
  r.refuse = "broken";
  EXPECT_THROW(scheduler.reconfigure({cluster("orders", 1), cluster("broken", 9)}, r.registry),
               std::runtime_error);
  r.refuse.clear();
  // "orders" is still the one built at start: the same settings keep it.
  scheduler.reconfigure({cluster("orders", 1)}, r.registry);
  EXPECT_EQ(r.count("orders"), 2);
}

// Records every published snapshot's cycle, per cluster, so the test can wait for cycles.
struct Published {
  std::mutex mutex;
  std::condition_variable cv;
  std::map<std::string, std::vector<std::uint64_t>> cycles;

  void on(const std::shared_ptr<const ClusterSnapshot>& s) {
    {
      std::lock_guard lock(mutex);
      cycles[s->name].push_back(s->cycle);
    }
    cv.notify_all();
  }
  // Every cycle of `cluster` published so far, once `done` says they are enough (or what there
  // is after 10 s, for the failure message).
  std::vector<std::uint64_t> wait(
      const std::string& cluster,
      const std::function<bool(const std::vector<std::uint64_t>&)>& done) {
    std::unique_lock lock(mutex);
    cv.wait_until(lock, std::chrono::steady_clock::now() + 10s,
                  [&] { return done(cycles[cluster]); });
    return cycles[cluster];
  }
};

// 1, 2, 3 … with no gap and no restart.
bool counts_on(const std::vector<std::uint64_t>& cycles) {
  for (std::size_t i = 0; i < cycles.size(); ++i)
    if (cycles[i] != i + 1) return false;
  return true;
}

TEST(SchedulerReconfigure, AKeptClusterGoesOnCountingCyclesAndARebuiltOneStartsAgain) {
  CountingRegistry r;
  SystemClock clock;
  SnapshotStore store;
  Published published;
  store.subscribe([&](const auto& s) { published.on(s); });
  Scheduler scheduler({cluster("orders", 1, 20ms), cluster("users", 20, 20ms)}, r.registry, clock,
                      store);
  scheduler.start();
  auto at_least = [](std::size_t n) { return [n](const auto& c) { return c.size() >= n; }; };
  const auto orders_before = published.wait("orders", at_least(3));
  const auto users_before = published.wait("users", at_least(3));
  ASSERT_GE(orders_before.size(), 3u);
  ASSERT_GE(users_before.size(), 3u);

  auto changed = cluster("users", 20, 20ms);
  changed.routing.fall = 2;
  scheduler.reconfigure({cluster("orders", 30, 20ms), changed}, r.registry);
  // The rebuilt cluster counts from 1 again: wait for its cycles 1 and 2 after the restart.
  const auto users = published.wait("users", [&](const auto& c) {
    return c.size() >= users_before.size() + 2 && c.back() >= 2 &&
           std::find(c.begin() + 1, c.end(), 1u) != c.end();
  });
  const auto orders = published.wait("orders", at_least(orders_before.size() + 2));
  scheduler.stop();

  EXPECT_TRUE(counts_on(orders)) << "the kept cluster's cycles: " << testing::PrintToString(orders);
  EXPECT_GE(orders.size(), orders_before.size() + 2);
  auto restart = std::find(users.begin() + 1, users.end(), 1u);
  ASSERT_NE(restart, users.end()) << "the rebuilt cluster's cycles: "
                                  << testing::PrintToString(users);
  EXPECT_GE(static_cast<std::size_t>(restart - users.begin()), users_before.size())
      << "restarted only after reconfigure(): " << testing::PrintToString(users);
  EXPECT_TRUE(counts_on(std::vector<std::uint64_t>(users.begin(), restart)) &&
              counts_on(std::vector<std::uint64_t>(restart, users.end())))
      << "one restart, no other: " << testing::PrintToString(users);
}

// A primary ("a") writing all the time and a replica ("b") whose replay is stuck at the
// primary's first position: its lag grows with the clock. `writes` is the primary's progress,
// shared by the collectors a rebuild makes anew (the server goes on, not the collector).
class StuckReplicaCollector final : public Collector {
 public:
  StuckReplicaCollector(bool primary, std::atomic<std::uint64_t>& writes)
      : primary_(primary), writes_(writes) {}
  NodeSample collect(const Clock& clock) override {
    NodeSample s;
    s.sampled_at = clock.now();
    if (primary_) {
      s.role = Role::primary;
      s.writable = true;
      s.current_position = Position{0, 1000 + 100 * writes_++, ""};
    } else {
      s.role = Role::replica;
      ReplicationChannel c;
      c.replayed = Position{0, 1000, ""};
      c.connected = true;
      c.applying = false;
      s.channels.push_back(c);
    }
    return s;
  }
  void abort() override {}

 private:
  bool primary_;
  std::atomic<std::uint64_t>& writes_;
};

// (lag_seconds, beyond_horizon) of replica "b" in each snapshot of `cluster`, in order.
struct ReplicaLag {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<std::pair<double, bool>> lags;

  void on(const std::shared_ptr<const ClusterSnapshot>& s) {
    for (const auto& n : s->nodes)
      if (n.name == "b" && n.main() && n.main()->lag_seconds) {
        std::lock_guard lock(mutex);
        lags.emplace_back(*n.main()->lag_seconds, n.main()->lag_beyond_horizon);
      }
    cv.notify_all();
  }
  std::vector<std::pair<double, bool>> wait(std::size_t n) {
    std::unique_lock lock(mutex);
    cv.wait_until(lock, std::chrono::steady_clock::now() + 10s, [&] { return lags.size() >= n; });
    return lags;
  }
};

struct Rebuilt {
  double lag_before = 0;  // the last lag figure of "b" before the rebuild
  double lag = 0;         // the first one after it
  bool beyond_horizon = true;
};

// "b"'s lag around reconfigure() rebuilding the cluster as `change` makes it.
Rebuilt lag_after_rebuild(const std::function<void(ClusterConfig&)>& change) {
  std::atomic<std::uint64_t> writes{0};
  CollectorRegistry registry;
  registry.add("fake", [&writes](const CollectorContext& c) -> std::unique_ptr<Collector> {
    return std::make_unique<StuckReplicaCollector>(c.node->name == "a", writes);
  });
  SystemClock clock;
  SnapshotStore store;
  ReplicaLag before, after;
  std::atomic<bool> reconfigured{false};
  store.subscribe([&](const auto& s) { (reconfigured ? after : before).on(s); });
  Scheduler scheduler({cluster("orders", 1, 20ms)}, registry, clock, store);
  scheduler.start();
  // Stuck for 10 cycles (beyond_horizon only in the first: its position is the oldest).
  const auto stuck = before.wait(10);
  EXPECT_GE(stuck.size(), 10u);
  auto changed = cluster("orders", 1, 20ms);
  change(changed);
  {
    // Snapshots published while reconfigure() runs may come from either cluster; only those
    // after it returned are the rebuilt one's. A cycle cannot finish in between: finishing
    // needs the lock reconfigure() holds while it swaps the clusters.
    scheduler.reconfigure({changed}, registry);
    reconfigured = true;
  }
  const auto rebuilt = after.wait(1);
  scheduler.stop();
  if (rebuilt.empty() || stuck.empty()) {
    ADD_FAILURE() << "no lag figure before or after the rebuild";
    return {};
  }
  return {stuck.back().first, rebuilt[0].first, rebuilt[0].second};
}

TEST(SchedulerReconfigure, AChangedClusterOnTheSameServersKeepsMeasuringLag) {
  const Rebuilt r = lag_after_rebuild([](ClusterConfig& c) {
    c.nodes[1].thresholds.lag_seconds_critical = 9.0;
    c.timeout = 15ms;
  });
  EXPECT_FALSE(r.beyond_horizon) << "the timeline was lost: lag " << r.lag;
  EXPECT_GT(r.lag, r.lag_before) << "the stuck replica's lag went on growing";
}

TEST(SchedulerReconfigure, AChangedClusterOnOtherServersStartsANewTimeline) {
  const Rebuilt r =
      lag_after_rebuild([](ClusterConfig& c) { c.nodes[0].dsn = "fake://elsewhere"; });
  EXPECT_TRUE(r.beyond_horizon) << "positions of another server measured against the old ones";
  EXPECT_LT(r.lag, r.lag_before) << "a new timeline starts at the first cycle";
}

// ------------------------------------------------------------------ restart-only settings

Config base_config() {
  Config c;
  c.path = "lagwatch.toml";
  c.server.listen = "127.0.0.1:9817";
  c.clusters = {cluster("orders", 1), cluster("users", 20)};
  RoutingPush push;
  push.name = "router";
  push.url = "http://router/lagwatch";
  c.routing.push = {push};
  AlertReceiver pd;
  pd.name = "oncall";
  pd.type = ReceiverType::pagerduty;
  pd.url = Secret{"url", "https://events.pagerduty.com/v2/enqueue"};
  pd.routing_key = Secret{"routing_key_file /run/pd", "R0123"};
  c.alerting.receivers = {pd};
  c.alerting.state_file = "/var/lib/lagwatch/alerts.json";
  return c;
}

TEST(RestartOnlyChanges, NoneWhenOnlyReloadableSettingsChange) {
  Config started = base_config();
  Config next = base_config();
  next.clusters[0].nodes[0].thresholds.lag_seconds_warning = 0.5;
  next.clusters[1].routing.rise = 7;
  next.clusters.push_back(cluster("billing", 50));
  next.server.shard_count = 2;  // applied: the scheduler gets the shard's clusters
  next.clusters[0].line = 99;
  EXPECT_EQ(restart_only_changes(started, next), std::vector<std::string>{});
}

TEST(RestartOnlyChanges, NamesEveryServerPushAndAlertingSettingThatChanged) {
  Config started = base_config();
  started.server.tls = TlsOptions{"server.pem", "server.key", ""};
  Config next = base_config();
  next.server.listen = "127.0.0.1:9818";
  next.server.agent_listen = "127.0.0.1:9819";
  next.server.tls = TlsOptions{"server.pem", "other.key", "ca.pem"};
  next.server.basic_auth = BasicAuthOptions{{{"prom", "sha256:00"}}, true};
  next.routing.push[0].keepalive = 5s;
  RoutingPush second;
  second.name = "second";
  next.routing.push.push_back(second);
  next.alerting.group_wait = 1s;
  next.alerting.for_durations[static_cast<std::size_t>(Condition::lag_critical)] = 1s;
  next.alerting.receivers[0].routing_key = Secret{"routing_key_file /run/pd", "R9999"};
  next.alerting.receivers[0].severities = {Severity::critical};
  AlertReceiver hook;
  hook.name = "hook";
  next.alerting.receivers.push_back(hook);

  const std::vector<std::string> want = {
      "[server] listen",
      "[server] agent_listen",
      "[server.tls] key_file, client_ca_file",
      "[server.basic_auth] (added)",
      "[[routing.push]] \"router\": keepalive",
      "[[routing.push]] \"second\" (added)",
      "[alerting] group_wait",
      "[alerting.for] lag_critical",
      "[[alerting.receiver]] \"oncall\": routing_key, severities",
      "[[alerting.receiver]] \"hook\" (added)",
  };
  const auto got = restart_only_changes(started, next);
  EXPECT_EQ(got, want);
  for (const auto& line : got) {
    EXPECT_EQ(line.find("R9999"), std::string::npos) << "a secret in: " << line;
    EXPECT_EQ(line.find("R0123"), std::string::npos) << "a secret in: " << line;
  }

  // Removed ones are named too; changed back to the start's values, nothing is.
  Config removed = base_config();
  removed.routing.push.clear();
  removed.alerting.receivers.clear();
  EXPECT_EQ(
      restart_only_changes(started, removed),
      (std::vector<std::string>{"[server.tls] (removed)", "[[routing.push]] \"router\" (removed)",
                                "[[alerting.receiver]] \"oncall\" (removed)"}));
  Config back = base_config();
  back.server.tls = started.server.tls;
  EXPECT_EQ(restart_only_changes(started, back), std::vector<std::string>{});
}

TEST(RestartOnlyChanges, NamesTheHeartbeatWriterOfAClusterInWriteMode) {
  Config started = base_config();
  started.clusters[0].heartbeat =
      HeartbeatConfig{HeartbeatConfig::Mode::write, "lagwatch.hb", 250ms, std::nullopt};
  Config next = started;
  // What the writer does not use: no warning.
  next.clusters[0].nodes[0].thresholds.lag_seconds_critical = 9.0;
  next.clusters[0].routing.rise = 9;
  EXPECT_EQ(restart_only_changes(started, next), std::vector<std::string>{});
  // What it uses: its table, and how to reach the nodes.
  next.clusters[0].heartbeat->table = "other.hb";
  EXPECT_EQ(restart_only_changes(started, next),
            std::vector<std::string>{"[cluster.heartbeat] writer of cluster \"orders\""});
  next = started;
  next.clusters[0].nodes[1].dsn = "fake://b2";
  EXPECT_EQ(restart_only_changes(started, next),
            std::vector<std::string>{"[cluster.heartbeat] writer of cluster \"orders\""});
  // Added to a cluster, switched to read mode: named; the cluster removed: it stops by itself.
  next = started;
  next.clusters[1].heartbeat = HeartbeatConfig{};
  next.clusters[0].heartbeat->mode = HeartbeatConfig::Mode::read;
  EXPECT_EQ(restart_only_changes(started, next),
            (std::vector<std::string>{"[cluster.heartbeat] writer of cluster \"orders\" (removed)",
                                      "[cluster.heartbeat] writer of cluster \"users\" (added)"}));
  next = started;
  next.clusters.erase(next.clusters.begin());
  EXPECT_EQ(restart_only_changes(started, next), std::vector<std::string>{});
}

}  // namespace
}  // namespace lagwatch
