// The notifier's pure core: conditions read from snapshots, and the alert state machine's
// `for`, group_wait, repeat_interval, keep_firing_for, inhibition, delivery bookkeeping and
// state document, all driven by a fake clock.
#include "alerting.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "api.h"

namespace lagwatch {
namespace {

using namespace std::chrono_literals;

// ---- Snapshots: a PostgreSQL cluster "orders", primary pg1, replicas as each test sets ----

// 2026-11-24T20:00:00Z, so bodies show readable times.
WallTime t0() { return WallTime{} + std::chrono::seconds(1795550400); }

Thresholds levels() {
  Thresholds t;
  t.lag_seconds_warning = 1.0;
  t.lag_seconds_critical = 5.0;
  t.lag_bytes_warning = Bytes{10ULL << 20};
  t.lag_bytes_critical = Bytes{100ULL << 20};
  return t;
}

NodeStatus primary(const std::string& name = "pg1") {
  NodeStatus n;
  n.name = name;
  n.address = "10.0.0.1:5432";
  n.up = true;
  n.role = Role::primary;
  n.writable = true;
  n.state = Health::ok;
  n.thresholds = levels();
  return n;
}

struct Stream {
  std::optional<double> lag_seconds;
  std::optional<std::uint64_t> lag_bytes;
  bool connected;
  bool applying;
  std::string channel;
};

Stream stream(double seconds, std::uint64_t bytes, bool connected = true, bool applying = true) {
  return Stream{seconds, bytes, connected, applying, ""};
}

NodeStatus replica(const std::string& name, Stream s) {
  NodeStatus n;
  n.name = name;
  n.address = "10.0.0.2:5432";
  n.up = true;
  n.role = Role::replica;
  n.thresholds = levels();
  ChannelStatus c;
  c.name = s.channel;
  c.lag_seconds = s.lag_seconds;
  c.lag_bytes = s.lag_bytes;
  c.connected = s.connected;
  c.applying = s.applying;
  n.channels.push_back(c);
  n.main_channel = 0;
  return n;
}

NodeStatus lagging(const std::string& name, double seconds, std::uint64_t bytes = 0) {
  return replica(name, stream(seconds, bytes));
}

NodeStatus down(const std::string& name, CollectionError error = CollectionError::connect) {
  NodeStatus n;
  n.name = name;
  n.up = false;
  n.error = error;
  n.thresholds = levels();
  return n;
}

// Fills in what evaluation would: channel and node health, primaries, the replica list.
ClusterSnapshot cluster(std::vector<NodeStatus> nodes, const std::string& name = "orders") {
  ClusterSnapshot s;
  s.name = name;
  s.engine = "postgres";
  s.cycle = 1;
  for (auto& n : nodes) {
    if (n.role == Role::primary && n.writable) {
      ++s.primaries;
      s.primary = n.name;
    }
    if (n.up && n.role == Role::replica) {
      Health worst = Health::ok;
      for (auto& c : n.channels) {
        // Same rule as evaluation: a broken stream is critical, else lag against thresholds.
        c.state = !*c.connected                           ? Health::critical
                  : c.lag_seconds && *c.lag_seconds > 5.0 ? Health::critical
                  : c.lag_seconds && *c.lag_seconds > 1.0 ? Health::warning
                                                          : Health::ok;
        worst = std::max(worst, c.state);
      }
      n.state = worst;
      if (worst != Health::critical) {
        ReplicaListEntry e;
        e.node = n.name;
        s.list.replicas.push_back(e);
      }
    }
  }
  s.state = s.primaries == 1 ? Health::ok : Health::critical;
  s.nodes = std::move(nodes);
  return s;
}

std::vector<std::string> names(const ClusterObservations& o) {
  std::vector<std::string> out;
  for (const auto& a : o.active) out.push_back(dedup_key(a.key));
  return out;
}

const Observation& find(const ClusterObservations& o, Condition c, const std::string& node = "") {
  for (const auto& a : o.active)
    if (a.key.condition == c && a.key.node == node) return a;
  throw std::runtime_error("no " + std::string(condition_info(c).name) + " observation for " +
                           node);
}

// ---- Conditions -------------------------------------------------------------------------

TEST(Observe, HealthyClusterShowsNothing) {
  const auto o = observe(cluster({primary(), lagging("pg2", 0.2), lagging("pg3", 0.0)}));
  EXPECT_TRUE(o.active.empty()) << ::testing::PrintToString(names(o));
  EXPECT_EQ(o.nodes, (std::set<std::string>{"pg1", "pg2", "pg3"}));
  EXPECT_TRUE(o.unjudged.empty());
}

TEST(Observe, LagLevelsAgainstTheNodesThresholds) {
  struct Case {
    double seconds;
    std::uint64_t bytes;
    std::vector<std::string> want;
  };
  const Case cases[] = {
      {1.0, 0, {}},  // at the level is not above it
      {1.5, 0, {"lagwatch:orders:pg2:lag_warning"}},
      {5.5, 0, {"lagwatch:orders:pg2:lag_warning", "lagwatch:orders:pg2:lag_critical"}},
      {0.1, 11ULL << 20, {"lagwatch:orders:pg2:lag_warning"}},
      {0.1, 101ULL << 20, {"lagwatch:orders:pg2:lag_warning", "lagwatch:orders:pg2:lag_critical"}},
  };
  for (const auto& c : cases) {
    const auto o =
        observe(cluster({primary(), lagging("pg2", c.seconds, c.bytes), lagging("pg3", 0)}));
    EXPECT_EQ(names(o), c.want) << c.seconds << "s " << c.bytes << "B";
  }
}

TEST(Observe, LagCriticalFactsNameTheFiguresAndTheLevel) {
  const auto o =
      observe(cluster({primary(), lagging("pg2", 12.34, 3ULL << 20), lagging("pg3", 0)}));
  const AlertFacts& f = find(o, Condition::lag_critical, "pg2").facts;
  EXPECT_EQ(f.engine, "postgres");
  EXPECT_EQ(f.state, "critical");
  EXPECT_EQ(f.lag_seconds, 12.34);
  EXPECT_EQ(f.lag_bytes, 3ULL << 20);
  EXPECT_EQ(f.threshold_seconds, 5.0);
  EXPECT_EQ(f.threshold_bytes, 100ULL << 20);
  EXPECT_EQ(f.summary,
            "Replica orders/pg2 lags 12.3s (3MiB) behind its primary, above its critical "
            "threshold (5.0s / 100MiB)");
  const AlertFacts& w = find(o, Condition::lag_warning, "pg2").facts;
  EXPECT_EQ(w.threshold_seconds, 1.0);
  EXPECT_EQ(w.summary,
            "Replica orders/pg2 lags 12.3s (3MiB) behind its primary, above its warning "
            "threshold (1.0s / 10MiB)");
}

TEST(Observe, LagThatIsOnlyALowerBoundBelowTheLevelIsUndecided) {
  // Just after a start the timeline is younger than the replica's lag: 0.5s is a lower bound.
  auto young = lagging("pg2", 0.5);
  young.channels[0].lag_beyond_horizon = true;
  const auto o = observe(cluster({primary(), young, lagging("pg3", 0)}));
  EXPECT_TRUE(o.active.empty()) << ::testing::PrintToString(names(o));
  EXPECT_EQ(o.undecided, (std::set<AlertKey>{{Condition::lag_warning, "orders", "pg2", ""},
                                             {Condition::lag_critical, "orders", "pg2", ""}}));
  // A lower bound above a level decides it; one below the other level still does not.
  auto older = lagging("pg2", 2.0);
  older.channels[0].lag_beyond_horizon = true;
  const auto o2 = observe(cluster({primary(), older, lagging("pg3", 0)}));
  EXPECT_EQ(names(o2), std::vector<std::string>{"lagwatch:orders:pg2:lag_warning"});
  EXPECT_EQ(o2.undecided, (std::set<AlertKey>{{Condition::lag_critical, "orders", "pg2", ""}}));
  // Bytes alone decide when seconds are unknown.
  const auto o3 = observe(cluster(
      {primary(), replica("pg2", Stream{std::nullopt, 1024, true, true, ""}), lagging("pg3", 0)}));
  EXPECT_TRUE(o3.active.empty() && o3.undecided.empty());
}

TEST(Observe, BrokenStreamIsDisconnectedNotALagLevel) {
  const auto o =
      observe(cluster({primary(), replica("pg2", stream(0.0, 0, false)), lagging("pg3", 0)}));
  EXPECT_EQ(names(o), std::vector<std::string>{"lagwatch:orders:pg2:replica_disconnected"});
  EXPECT_EQ(find(o, Condition::replica_disconnected, "pg2").facts.summary,
            "Replica orders/pg2 is not receiving from its primary");
}

TEST(Observe, PausedReplayIsNotApplying) {
  const auto o =
      observe(cluster({primary(), replica("pg2", stream(0.4, 0, true, false)), lagging("pg3", 0)}));
  EXPECT_EQ(names(o), std::vector<std::string>{"lagwatch:orders:pg2:replica_not_applying"});
  EXPECT_EQ(find(o, Condition::replica_not_applying, "pg2").facts.summary,
            "Replica orders/pg2 is not applying changes (replay paused / SQL thread stopped); "
            "lag 0.4s (0B)");
}

TEST(Observe, DownNodeIsNodeDownAndItsReplicaConditionsUnjudged) {
  const auto o =
      observe(cluster({primary(), down("pg2", CollectionError::timeout), lagging("pg3", 0)}));
  EXPECT_EQ(names(o), std::vector<std::string>{"lagwatch:orders:pg2:node_down"});
  const AlertFacts& f = find(o, Condition::node_down, "pg2").facts;
  EXPECT_EQ(f.reason, "timeout");
  EXPECT_EQ(f.summary, "lagwatch cannot collect node orders/pg2 (timeout error)");
  EXPECT_EQ(o.unjudged, std::set<std::string>{"pg2"});
}

TEST(Observe, PrimariesDecideSplitBrainAndNoPrimary) {
  auto two = cluster({primary("pg1"), primary("pg2"), lagging("pg3", 0)});
  const auto split = observe(two);
  EXPECT_EQ(names(split), std::vector<std::string>{"lagwatch:orders:split_brain"});
  const AlertFacts& f = find(split, Condition::split_brain).facts;
  EXPECT_EQ(f.primaries, 2);
  EXPECT_EQ(f.primary_nodes, (std::vector<std::string>{"pg1", "pg2"}));
  EXPECT_EQ(f.summary, "Split-brain: 2 writable primaries in cluster orders (pg1, pg2)");

  const auto none = observe(cluster({lagging("pg2", 0), lagging("pg3", 0)}));
  EXPECT_EQ(names(none), std::vector<std::string>{"lagwatch:orders:no_primary"});
  EXPECT_EQ(find(none, Condition::no_primary).facts.summary,
            "No writable primary in cluster orders");
}

TEST(Observe, NoRoutableReplicaOnlyWithReplicasToRouteTo) {
  auto empty = cluster({primary(), lagging("pg2", 9), lagging("pg3", 9)});
  EXPECT_TRUE(empty.list.replicas.empty());
  const auto o = observe(empty);
  EXPECT_EQ(find(o, Condition::no_routable_replica).facts.summary,
            "No replica of cluster orders is fit to serve reads");

  auto fallback = cluster({primary(), lagging("pg2", 9)});
  fallback.list.fallback = "primary";
  fallback.list.replicas = {ReplicaListEntry{}};  // the primary, listed as the fallback
  const auto f = observe(fallback);
  EXPECT_EQ(find(f, Condition::no_routable_replica).facts.summary,
            "No replica of cluster orders is fit to serve reads; reads fall back to the primary");
  EXPECT_EQ(find(f, Condition::no_routable_replica).facts.fallback, "primary");

  const auto alone = observe(cluster({primary()}));
  EXPECT_TRUE(alone.active.empty()) << ::testing::PrintToString(names(alone));
}

TEST(Observe, MysqlChannelsAreSeparateAlerts) {
  auto db2 = replica("db2", stream(7.0, 0));
  ChannelStatus east = db2.channels[0];
  east.name = "east";
  east.lag_seconds = 2.0;
  db2.channels.push_back(east);
  const auto o = observe(cluster({primary("db1"), db2, lagging("db3", 0)}));
  EXPECT_EQ(names(o), (std::vector<std::string>{"lagwatch:orders:db2:lag_warning",
                                                "lagwatch:orders:db2:lag_critical",
                                                "lagwatch:orders:db2/east:lag_warning"}));
}

TEST(DedupKey, PlainStableAndTheSameForEveryInstance) {
  EXPECT_EQ(dedup_key({Condition::lag_critical, "orders", "pg2", ""}),
            "lagwatch:orders:pg2:lag_critical");
  EXPECT_EQ(dedup_key({Condition::lag_warning, "orders", "db2", "east"}),
            "lagwatch:orders:db2/east:lag_warning");
  EXPECT_EQ(dedup_key({Condition::split_brain, "orders", "", ""}), "lagwatch:orders:split_brain");
  // Python: hashlib.sha256(b"lagwatch:orders:pg2:lag_critical").hexdigest()[:16]
  EXPECT_EQ(alert_fingerprint({Condition::lag_critical, "orders", "pg2", ""}), "b11c48c3fd01cd25");
  EXPECT_EQ(alert_fingerprint({Condition::split_brain, "orders", "", ""}), "1d4a83eecaad0f31");
}

TEST(Format, LagAndSizeAsMessagesShowThem) {
  EXPECT_EQ(format_lag(0), "0.0s");
  EXPECT_EQ(format_lag(12.34), "12.3s");
  EXPECT_EQ(format_lag(125.4), "2m5s");
  EXPECT_EQ(format_lag(3600), "1h");
  EXPECT_EQ(format_size(512), "512B");
  EXPECT_EQ(format_size(1536), "1.5KiB");
  EXPECT_EQ(format_size(100ULL << 20), "100MiB");
  EXPECT_EQ(format_size(3ULL << 30), "3GiB");
}

TEST(Conditions, NamesMatchThePrometheusRulesAndDefaults) {
  EXPECT_EQ(condition_info(Condition::lag_warning).alertname, "LagwatchReplicaLagWarning");
  EXPECT_EQ(condition_info(Condition::lag_critical).default_for, 30s);
  EXPECT_EQ(condition_info(Condition::node_down).alertname, "LagwatchNodeDown");
  EXPECT_EQ(condition_info(Condition::replica_not_applying).default_for, 1min);
  EXPECT_EQ(condition_info(Condition::split_brain).default_for, 0s);
  EXPECT_EQ(condition_info(Condition::no_routable_replica).alertname, "LagwatchNoRoutableReplica");
  for (const auto& c : kConditions) {
    EXPECT_EQ(parse_condition(c.name), c.condition);
    EXPECT_EQ(&condition_info(c.condition), &c);
  }
  EXPECT_FALSE(parse_condition("lag"));
}

// ---- AlertBook --------------------------------------------------------------------------

AlertTimers timers(Duration group_wait = 10s) {
  AlertingConfig config;
  config.group_wait = group_wait;
  return AlertTimers::from(config);
}

ReceiverRoute route(const std::string& name, std::vector<Severity> severities = {},
                    std::vector<Condition> conditions = {}, Duration repeat = 4h) {
  return ReceiverRoute{name, std::move(conditions), std::move(severities), repeat};
}

// Drives a book with a fake clock: feed(snapshot) evaluates at the clock's time.
struct Harness {
  FakeClock clock{t0()};
  AlertBook book;
  explicit Harness(AlertTimers t = timers(), std::vector<ReceiverRoute> routes = {route("pd")})
      : book(t, std::move(routes)) {}

  void feed(const ClusterSnapshot& s) { book.evaluate(s, clock.now()); }
  // Feeds `s` every second for `d`.
  void hold(const ClusterSnapshot& s, Duration d) {
    const WallTime end = clock.now() + d;
    while (clock.now() < end) {
      clock.advance(1s);
      feed(s);
    }
  }
  std::vector<std::string> work(const std::string& receiver = "pd") const {
    std::vector<std::string> out;
    for (const auto& w : book.pending(receiver, clock.now())) {
      const char* kind = w.kind == WorkKind::trigger  ? "trigger"
                         : w.kind == WorkKind::repeat ? "repeat"
                         : w.told_firing              ? "resolve"
                                                      : "resolve-unsent";
      out.push_back(std::string(kind) + " " + dedup_key(w.alert.key));
    }
    return out;
  }
  // Delivers everything pending to `receiver` as a Slack-like receiver would.
  void deliver(const std::string& receiver = "pd") {
    for (const auto& w : book.pending(receiver, clock.now()))
      book.told(receiver, w, w.kind == WorkKind::resolve ? Told::resolved : Told::firing,
                clock.now());
  }
  const Alert* alert(Condition c, const std::string& node = "pg2") const {
    const auto it = book.alerts().find(AlertKey{c, "orders", node, ""});
    return it == book.alerts().end() ? nullptr : &it->second;
  }
};

using Pending = std::vector<std::string>;

const auto kHealthy = [] { return cluster({primary(), lagging("pg2", 0), lagging("pg3", 0)}); };
const auto kCritical = [] { return cluster({primary(), lagging("pg2", 9), lagging("pg3", 0)}); };

TEST(AlertBook, OneBadSamplePagesNobody) {
  Harness h;
  h.feed(kCritical());
  h.clock.advance(1s);
  h.feed(kHealthy());
  h.hold(kHealthy(), 5min);
  EXPECT_EQ(h.work(), Pending{});
  EXPECT_TRUE(h.book.alerts().empty());
}

TEST(AlertBook, FiresAfterForThenNotifiesAfterGroupWait) {
  Harness h;
  h.feed(kCritical());
  h.hold(kCritical(), 29s);
  ASSERT_NE(h.alert(Condition::lag_critical), nullptr);
  EXPECT_FALSE(h.alert(Condition::lag_critical)->firing()) << "lag_critical's `for` is 30s";
  h.hold(kCritical(), 1s);
  EXPECT_TRUE(h.alert(Condition::lag_critical)->firing());
  EXPECT_EQ(h.alert(Condition::lag_critical)->firing_since, t0() + 30s);
  EXPECT_EQ(h.work(), Pending{}) << "group_wait (10s) not over";
  h.hold(kCritical(), 9s);
  EXPECT_EQ(h.work(), Pending{});
  h.hold(kCritical(), 1s);
  EXPECT_EQ(h.work(), Pending{"trigger lagwatch:orders:pg2:lag_critical"});
}

TEST(AlertBook, WhatResolvesInsideGroupWaitNeverNotifies) {
  Harness h;
  h.feed(kCritical());
  h.hold(kCritical(), 35s);  // firing since 30s, group_wait ends at 40s
  EXPECT_TRUE(h.alert(Condition::lag_critical)->firing());
  h.clock.advance(1s);
  h.feed(kHealthy());
  h.hold(kHealthy(), 1min);
  EXPECT_EQ(h.work(), Pending{});
  EXPECT_TRUE(h.book.alerts().empty());
}

TEST(AlertBook, RepeatsEveryRepeatIntervalWhileFiringThenResolves) {
  Harness h(timers(0s), {route("pd", {}, {}, 1h)});
  h.feed(kCritical());
  h.hold(kCritical(), 30s);
  EXPECT_EQ(h.work(), Pending{"trigger lagwatch:orders:pg2:lag_critical"});
  h.deliver();
  EXPECT_EQ(h.book.next_repeat("pd"), h.clock.now() + 1h);
  h.hold(kCritical(), 59min);
  EXPECT_EQ(h.work(), Pending{});
  h.hold(kCritical(), 1min);
  EXPECT_EQ(h.work(), Pending{"repeat lagwatch:orders:pg2:lag_critical"});
  h.deliver();
  EXPECT_EQ(h.work(), Pending{});
  h.clock.advance(1s);
  h.feed(kHealthy());
  EXPECT_EQ(h.work(), (Pending{"resolve lagwatch:orders:pg2:lag_critical"}));
  h.deliver();
  EXPECT_EQ(h.work(), Pending{});
  EXPECT_TRUE(h.book.alerts().empty()) << "nothing owed: forgotten";
}

TEST(AlertBook, ResolvedBeforeTheTriggerWasDeliveredStillOwesTheResolve) {
  Harness h(timers(0s));
  h.feed(kCritical());
  h.hold(kCritical(), 30s);
  EXPECT_EQ(h.work(), Pending{"trigger lagwatch:orders:pg2:lag_critical"});
  // The receiver was down; meanwhile the lag recovered.
  h.clock.advance(1s);
  h.feed(kHealthy());
  EXPECT_EQ(h.work(), Pending{"resolve-unsent lagwatch:orders:pg2:lag_critical"});
  // PagerDuty sends the trigger first (it can only resolve what it was triggered with)...
  const auto w = h.book.pending("pd", h.clock.now()).front();
  h.book.told("pd", w, Told::firing, h.clock.now());
  EXPECT_EQ(h.work(), Pending{"resolve lagwatch:orders:pg2:lag_critical"});
  h.deliver();
  EXPECT_TRUE(h.book.alerts().empty());
}

TEST(AlertBook, NewFiringBeforeTheOldOnesResolveWasDeliveredSendsThatResolveFirst) {
  Harness h(timers(0s));
  h.feed(kCritical());
  h.hold(kCritical(), 30s);
  h.deliver();
  const WallTime first_fired = *h.alert(Condition::lag_critical)->firing_since;
  h.clock.advance(1s);
  h.feed(kHealthy());
  const WallTime first_resolved = h.clock.now();
  EXPECT_EQ(h.work(), Pending{"resolve lagwatch:orders:pg2:lag_critical"});
  // The resolve does not get through, and the lag comes back for longer than `for`.
  h.hold(kCritical(), 31s);
  ASSERT_TRUE(h.alert(Condition::lag_critical)->firing());
  EXPECT_EQ(h.work(), (Pending{"resolve lagwatch:orders:pg2:lag_critical",
                               "trigger lagwatch:orders:pg2:lag_critical"}))
      << "the receiver hears the first firing end, then the second begin";
  const auto work = h.book.pending("pd", h.clock.now());
  EXPECT_TRUE(work[0].owed_episode);
  EXPECT_EQ(work[0].alert.firing_since, first_fired);
  EXPECT_EQ(work[0].alert.resolved_at, first_resolved);
  EXPECT_EQ(work[0].alert.facts.lag_seconds, 9.0);
  EXPECT_FALSE(work[1].owed_episode);
  EXPECT_GT(work[1].alert.firing_since, first_resolved);
  h.deliver();
  EXPECT_EQ(h.work(), Pending{});
  h.clock.advance(1s);
  h.feed(kHealthy());
  EXPECT_EQ(h.work(), Pending{"resolve lagwatch:orders:pg2:lag_critical"});
  h.deliver();
  EXPECT_TRUE(h.book.alerts().empty());
}

TEST(AlertBook, FiringThatNeverReachedTheReceiverIsReportedAlsoWhenItFiresAgain) {
  Harness h(timers(0s));
  h.feed(kCritical());
  h.hold(kCritical(), 30s);
  EXPECT_EQ(h.work(), Pending{"trigger lagwatch:orders:pg2:lag_critical"});
  // The receiver is down through a firing, its end and the next firing.
  h.clock.advance(1s);
  h.feed(kHealthy());
  h.hold(kCritical(), 31s);
  EXPECT_EQ(h.work(), (Pending{"resolve-unsent lagwatch:orders:pg2:lag_critical",
                               "trigger lagwatch:orders:pg2:lag_critical"}));
  // PagerDuty takes one event at a time, the first first: the missed firing is triggered,
  // then resolved, and only then is the new one triggered.
  auto pd = [&] {
    const auto w = h.book.pending("pd", h.clock.now()).front();
    const bool trigger = w.kind != WorkKind::resolve || !w.told_firing;
    h.book.told("pd", w, trigger ? Told::firing : Told::resolved, h.clock.now());
  };
  pd();
  EXPECT_EQ(h.work(), (Pending{"resolve lagwatch:orders:pg2:lag_critical",
                               "trigger lagwatch:orders:pg2:lag_critical"}));
  pd();
  EXPECT_EQ(h.work(), Pending{"trigger lagwatch:orders:pg2:lag_critical"});
  pd();
  EXPECT_EQ(h.work(), Pending{});
}

TEST(AlertBook, AlertFlappingThroughALongOutageIsOwedAtMostABoundedNumberOfFirings) {
  Harness h(timers(0s));
  const int firings = static_cast<int>(kMaxOwedEpisodes) + 5;
  for (int i = 0; i < firings; ++i) {
    h.hold(kCritical(), 31s);
    h.clock.advance(1s);
    h.feed(kHealthy());
  }
  const auto work = h.book.pending("pd", h.clock.now());
  // The last firing's resolve, and the earlier firings' up to the bound.
  ASSERT_EQ(work.size(), kMaxOwedEpisodes + 1);
  EXPECT_EQ(h.book.merged_episodes(), static_cast<std::uint64_t>(firings - 1) - kMaxOwedEpisodes);
  EXPECT_EQ(work.front().alert.firing_since, t0() + 31s) << "the first firing's start is kept";
  for (std::size_t i = 1; i < work.size(); ++i)
    EXPECT_GT(work[i].alert.firing_since, work[i - 1].alert.resolved_at) << "in order";
  h.deliver();
  EXPECT_TRUE(h.book.alerts().empty());
}

TEST(AlertBook, UndecidedLagAfterARestartNeitherResolvesNorRepages) {
  Harness h(timers(0s));
  h.feed(kCritical());
  h.hold(kCritical(), 30s);
  h.deliver();
  auto young = lagging("pg2", 0.5);
  young.channels[0].lag_beyond_horizon = true;
  h.hold(cluster({primary(), young, lagging("pg3", 0)}), 3s);
  EXPECT_TRUE(h.alert(Condition::lag_critical)->firing());
  EXPECT_EQ(h.work(), Pending{});
  h.hold(kCritical(), 1s);
  EXPECT_EQ(h.work(), Pending{}) << "the receiver already knows";
  h.hold(kHealthy(), 1s);
  EXPECT_EQ(h.work(), Pending{"resolve lagwatch:orders:pg2:lag_critical"});
}

TEST(AlertBook, KeepFiringForDampsAFlap) {
  AlertTimers t = timers(0s);
  t.keep_firing_for = 10s;
  Harness h(t);
  h.feed(kCritical());
  h.hold(kCritical(), 30s);
  h.deliver();
  h.hold(kHealthy(), 9s);
  EXPECT_TRUE(h.alert(Condition::lag_critical)->firing());
  h.hold(kCritical(), 2s);
  h.hold(kHealthy(), 10s);  // clear since the first of these: 9s
  EXPECT_EQ(h.work(), Pending{});
  h.hold(kHealthy(), 1s);
  EXPECT_EQ(h.work(), Pending{"resolve lagwatch:orders:pg2:lag_critical"});
}

TEST(AlertBook, LagCriticalInhibitsTheWarningOfTheSameReplica) {
  Harness h(timers(0s));
  h.feed(kCritical());
  h.hold(kCritical(), 2min);
  EXPECT_TRUE(h.alert(Condition::lag_warning)->firing());
  EXPECT_TRUE(h.alert(Condition::lag_warning)->inhibited);
  EXPECT_EQ(h.work(), Pending{"trigger lagwatch:orders:pg2:lag_critical"});
  h.deliver();
  // Down to the warning level: the critical resolves and the warning, firing all along, speaks.
  const auto warning = cluster({primary(), lagging("pg2", 2), lagging("pg3", 0)});
  h.clock.advance(1s);
  h.feed(warning);
  EXPECT_EQ(h.work(), (Pending{"trigger lagwatch:orders:pg2:lag_warning",
                               "resolve lagwatch:orders:pg2:lag_critical"}));
}

TEST(AlertBook, NodeDownInhibitsAndHoldsTheNodesLagAlerts) {
  Harness h(timers(0s));
  h.feed(kCritical());
  h.hold(kCritical(), 30s);
  h.deliver();
  const auto gone = cluster({primary(), down("pg2"), lagging("pg3", 0)});
  h.hold(gone, 5h);
  // Lag unknown while down: neither resolved nor repeated; node_down pages instead.
  EXPECT_TRUE(h.alert(Condition::lag_critical)->firing());
  EXPECT_TRUE(h.alert(Condition::lag_critical)->inhibited);
  EXPECT_EQ(h.work(), Pending{"trigger lagwatch:orders:pg2:node_down"});
  h.deliver();
  h.clock.advance(1s);
  h.feed(kHealthy());
  EXPECT_EQ(h.work(), (Pending{"resolve lagwatch:orders:pg2:lag_critical",
                               "resolve lagwatch:orders:pg2:node_down"}));
}

TEST(AlertBook, SplitBrainSilencesPerNodeAlertsOfItsCluster) {
  Harness h(timers(0s));
  const auto split = cluster({primary("pg1"), primary("pg2"), down("pg3")});
  h.feed(split);
  h.hold(split, 1min);
  EXPECT_TRUE(h.alert(Condition::node_down, "pg3")->firing());
  EXPECT_TRUE(h.alert(Condition::node_down, "pg3")->inhibited);
  EXPECT_EQ(h.work(), (Pending{"trigger lagwatch:orders:split_brain",
                               "trigger lagwatch:orders:no_routable_replica"}));
}

TEST(AlertBook, NoPrimarySilencesTheReplicasLostStreams) {
  Harness h(timers(0s));
  // The primary is gone: every standby loses its stream at once.
  const auto orphaned = cluster(
      {down("pg1"), replica("pg2", stream(0.0, 0, false)), replica("pg3", stream(0.0, 0, false))});
  h.feed(orphaned);
  h.hold(orphaned, 1min);
  ASSERT_TRUE(h.alert(Condition::replica_disconnected, "pg2"));
  EXPECT_TRUE(h.alert(Condition::replica_disconnected, "pg2")->firing());
  EXPECT_TRUE(h.alert(Condition::replica_disconnected, "pg2")->inhibited);
  EXPECT_TRUE(h.alert(Condition::replica_disconnected, "pg3")->inhibited);
  for (const auto& w : h.work()) EXPECT_EQ(w.find("replica_disconnected"), std::string::npos) << w;
  const auto work = h.work();
  EXPECT_NE(std::find(work.begin(), work.end(), "trigger lagwatch:orders:no_primary"), work.end());
  // Once a primary is back, a standby still not streaming is paged for.
  const auto one_lost =
      cluster({primary(), replica("pg2", stream(0.0, 0, false)), lagging("pg3", 0)});
  h.deliver();
  h.hold(one_lost, 1min);
  EXPECT_FALSE(h.alert(Condition::replica_disconnected, "pg2")->inhibited);
  EXPECT_EQ(h.work(), (Pending{"resolve lagwatch:orders:no_primary",
                               "resolve lagwatch:orders:no_routable_replica",
                               "resolve lagwatch:orders:pg1:node_down",
                               "trigger lagwatch:orders:pg2:replica_disconnected"}));
}

TEST(AlertBook, ReceiversGetOnlyTheirConditionsAndSeverities) {
  Harness h(timers(0s), {route("pd", {Severity::critical}), route("chat"),
                         route("lag", {}, {Condition::lag_warning})});
  const auto both = cluster({primary(), lagging("pg2", 9), lagging("pg3", 2)});
  h.feed(both);
  h.hold(both, 1min);
  // pg2's lag_warning is inhibited by its lag_critical; pg3's is not.
  EXPECT_EQ(h.work("pd"), Pending{"trigger lagwatch:orders:pg2:lag_critical"});
  EXPECT_EQ(h.work("chat"), (Pending{"trigger lagwatch:orders:pg2:lag_critical",
                                     "trigger lagwatch:orders:pg3:lag_warning"}));
  EXPECT_EQ(h.work("lag"), Pending{"trigger lagwatch:orders:pg3:lag_warning"});
  EXPECT_EQ(h.work("nobody"), Pending{});
}

TEST(AlertBook, SplitBrainFiresAtOnce) {
  Harness h(timers(0s));
  h.feed(cluster({primary("pg1"), primary("pg2"), lagging("pg3", 0)}));
  EXPECT_EQ(h.work(), Pending{"trigger lagwatch:orders:split_brain"});
}

TEST(AlertBook, NodeRemovedFromTheConfigIsResolved) {
  Harness h(timers(0s));
  h.feed(kCritical());
  h.hold(kCritical(), 30s);
  h.deliver();
  h.book.forget_unconfigured({{"orders", {"pg1", "pg3"}}}, h.clock.now());
  EXPECT_EQ(h.work(), Pending{"resolve lagwatch:orders:pg2:lag_critical"});
  h.book.forget_unconfigured({}, h.clock.now());
  EXPECT_EQ(h.work(), Pending{"resolve lagwatch:orders:pg2:lag_critical"});
}

TEST(AlertBook, DeliveryThatOutlivesTheAlertStillOwesItsResolve) {
  Harness h(timers(0s));
  h.feed(kCritical());
  h.hold(kCritical(), 30s);
  const auto in_flight = h.book.pending("pd", h.clock.now()).front();
  // Resolved and, having reached nobody, forgotten while the trigger was on the wire.
  h.book.told("pd", Work{WorkKind::resolve, false, in_flight.alert}, Told::resolved, h.clock.now());
  h.clock.advance(1s);
  h.feed(kHealthy());
  EXPECT_TRUE(h.book.alerts().empty());
  h.book.told("pd", in_flight, Told::firing, h.clock.now());
  EXPECT_EQ(h.work(), Pending{"resolve lagwatch:orders:pg2:lag_critical"});
}

// ---- State document ---------------------------------------------------------------------

TEST(AlertState, SavesFiringAlertsAndWhatEachReceiverWasTold) {
  Harness h(timers(0s), {route("pd"), route("chat")});
  h.feed(kCritical());
  h.hold(kCritical(), 30s);
  const auto w = h.book.pending("pd", h.clock.now());
  h.book.told("pd", w.front(), Told::firing, h.clock.now());
  const nlohmann::json state = h.book.save();
  ASSERT_EQ(state["version"], 1);
  ASSERT_EQ(state["alerts"].size(), 1u) << state.dump(2) << "\nlag_warning is still pending";
  const auto& a = state["alerts"][0];
  EXPECT_EQ(a["dedup_key"], "lagwatch:orders:pg2:lag_critical");
  EXPECT_EQ(a["condition"], "lag_critical");
  EXPECT_EQ(a["cluster"], "orders");
  EXPECT_EQ(a["node"], "pg2");
  EXPECT_EQ(a["channel"], "");
  EXPECT_EQ(a["severity"], "critical");
  EXPECT_EQ(a["firing_since"], "2026-11-24T20:00:30.000Z");
  EXPECT_EQ(a["resolved_at"], nullptr);
  EXPECT_EQ(a["facts"]["lag_seconds"], 9.0);
  EXPECT_EQ(a["receivers"]["pd"], (nlohmann::json{{"due", true},
                                                  {"told", "firing"},
                                                  {"told_at", "2026-11-24T20:00:30.000Z"},
                                                  {"owed", nlohmann::json::array()}}));
  EXPECT_EQ(a["receivers"]["chat"], (nlohmann::json{{"due", true},
                                                    {"told", "nothing"},
                                                    {"told_at", nullptr},
                                                    {"owed", nlohmann::json::array()}}));
  EXPECT_EQ(state.dump().find("http"), std::string::npos) << "no URLs in the state";
}

TEST(AlertState, RoundTripNeitherResendsNorForgetsTheResolve) {
  Harness before(timers(0s));
  before.feed(kCritical());
  before.hold(kCritical(), 30s);
  before.deliver();
  const nlohmann::json saved = before.book.save();

  // Restarted 20s later; the replica still lags.
  Harness after(timers(0s));
  after.clock.set(before.clock.now() + 20s);
  after.book.restore(nlohmann::json::parse(saved.dump()));
  EXPECT_EQ(after.book.save(), saved) << "restore(save()) is the identity";
  after.feed(kCritical());
  EXPECT_EQ(after.work(), Pending{}) << "no second trigger after a restart";
  after.hold(kCritical(), 4h);
  EXPECT_EQ(after.work(), Pending{"repeat lagwatch:orders:pg2:lag_critical"})
      << "repeat_interval counts from the send before the restart";
  after.deliver();
  after.clock.advance(1s);
  after.feed(kHealthy());
  EXPECT_EQ(after.work(), Pending{"resolve lagwatch:orders:pg2:lag_critical"});
}

TEST(AlertState, OwedFiringsSurviveARestart) {
  Harness before(timers(0s));
  before.hold(kCritical(), 31s);
  before.deliver();
  before.clock.advance(1s);
  before.feed(kHealthy());
  before.hold(kCritical(), 31s);  // fires again before its resolve was delivered
  const nlohmann::json saved = before.book.save();
  ASSERT_EQ(saved["alerts"][0]["receivers"]["pd"]["owed"].size(), 1u) << saved.dump(2);
  EXPECT_EQ(saved["alerts"][0]["receivers"]["pd"]["owed"][0]["told_firing"], true);

  Harness after(timers(0s));
  after.clock.set(before.clock.now() + 5s);
  after.book.restore(nlohmann::json::parse(saved.dump()));
  EXPECT_EQ(after.book.save(), saved) << "restore(save()) is the identity";
  after.feed(kCritical());
  EXPECT_EQ(after.work(), (Pending{"resolve lagwatch:orders:pg2:lag_critical",
                                   "trigger lagwatch:orders:pg2:lag_critical"}));
}

TEST(AlertState, RestoredAlertWhoseConditionIsGoneResolvesAtTheFirstEvaluation) {
  Harness before(timers(0s));
  before.feed(kCritical());
  before.hold(kCritical(), 30s);
  before.deliver();
  Harness after(timers(0s), {route("pd"), route("new")});
  after.clock.set(before.clock.now() + 1h);
  after.book.restore(before.book.save());
  after.feed(kHealthy());
  EXPECT_EQ(after.work(), Pending{"resolve lagwatch:orders:pg2:lag_critical"});
  EXPECT_EQ(after.work("new"), Pending{}) << "a receiver added meanwhile never heard of it";
}

TEST(AlertState, RefusesWhatItCannotRead) {
  Harness h;
  EXPECT_THROW(h.book.restore(nlohmann::json::array()), std::runtime_error);
  EXPECT_THROW(h.book.restore({{"version", 2}, {"alerts", nlohmann::json::array()}}),
               std::runtime_error);
  EXPECT_THROW(h.book.restore(nlohmann::json::parse(
                   R"({"version":1,"alerts":[{"condition":"lag","cluster":"orders"}]})")),
               std::runtime_error);
  EXPECT_THROW(h.book.restore(nlohmann::json::parse(
                   R"({"version":1,"alerts":[{"condition":"lag_critical","cluster":"orders",
                       "firing_since":"yesterday","resolved_at":null,"facts":{},"receivers":{}}]})")),
               std::runtime_error);
}

}  // namespace
}  // namespace lagwatch
