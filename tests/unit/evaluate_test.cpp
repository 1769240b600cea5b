// Evaluation of a cycle: lag from positions, fallbacks, health against thresholds.
#include "evaluate.h"

#include <gtest/gtest.h>

namespace lagwatch {
namespace {

using namespace std::chrono_literals;

ClusterConfig pg_cluster() {
  ClusterConfig c;
  c.name = "orders";
  c.engine = "postgres";
  for (const char* n : {"pg1", "pg2", "pg3"}) {
    NodeConfig node;
    node.name = n;
    node.application_name = n;
    node.address = std::string("127.0.0.1:") + n;
    node.thresholds.lag_seconds_warning = 1.0;
    node.thresholds.lag_seconds_critical = 5.0;
    node.thresholds.lag_bytes_warning = Bytes{10 << 20};
    node.thresholds.lag_bytes_critical = Bytes{100 << 20};
    c.nodes.push_back(node);
  }
  return c;
}

NodeSample primary(WallTime at, std::uint64_t lsn) {
  NodeSample s;
  s.sampled_at = at;
  s.role = Role::primary;
  s.writable = true;
  s.current_position = Position{0, lsn, ""};
  return s;
}

NodeSample standby(WallTime at, std::uint64_t replayed, bool connected = true,
                   std::optional<double> reported = std::nullopt) {
  NodeSample s;
  s.sampled_at = at;
  s.role = Role::replica;
  ReplicationChannel c;
  c.replayed = Position{0, replayed, ""};
  c.connected = connected;
  c.applying = true;
  c.reported_lag_seconds = reported;
  s.channels.push_back(c);
  return s;
}

NodeSample down(WallTime at, CollectionError e = CollectionError::connect) {
  NodeSample s;
  s.sampled_at = at;
  s.error = e;
  s.error_message = "connection refused";
  return s;
}

struct Harness {
  ClusterConfig config = pg_cluster();
  ClusterHistory history;
  std::uint64_t cycle = 0;
  ClusterSnapshot run(std::vector<NodeSample> samples, WallTime now) {
    return evaluate_cluster(config, samples, {}, history, ++cycle, now);
  }
};

const ChannelStatus& channel(const ClusterSnapshot& s, std::size_t node) {
  EXPECT_FALSE(s.nodes.at(node).channels.empty()) << "node " << s.nodes.at(node).name;
  return s.nodes.at(node).channels.at(0);
}

TEST(Evaluate, IdlePrimaryReportsZeroLagWhileEngineFigureClimbs) {
  Harness h;
  WallTime t0{};
  ClusterSnapshot s;
  for (int i = 0; i < 60; ++i) {
    auto at = t0 + i * 1s;
    // Nothing written: the engine's own figure (time since last replayed commit) grows.
    s = h.run({primary(at, 5000), standby(at + 1ms, 5000, true, i), standby(at + 1ms, 5000)}, at);
  }
  EXPECT_EQ(channel(s, 1).lag_seconds, 0.0);
  EXPECT_EQ(channel(s, 1).reported_lag_seconds, 59.0);
  EXPECT_EQ(channel(s, 1).lag_bytes, 0u);
  EXPECT_EQ(s.nodes[1].state, Health::ok);
  EXPECT_EQ(s.primaries, 1);
  EXPECT_EQ(s.primary, "pg1");
}

TEST(Evaluate, PausedReplicaLagGrowsAndCrossesThresholds) {
  Harness h;
  WallTime t0{};
  std::vector<Health> states;
  for (int i = 0; i < 8; ++i) {
    auto at = t0 + i * 1s;
    auto s = h.run({primary(at, 1000 + 100 * i), standby(at, 1000 + 100 * i), standby(at, 1100)}, at);
    if (i >= 1) {
      EXPECT_DOUBLE_EQ(*channel(s, 2).lag_seconds, i - 1.0);
    }
    states.push_back(s.nodes[2].state);
  }
  EXPECT_EQ(states[1], Health::ok);        // lag 0
  EXPECT_EQ(states[2], Health::ok);        // lag 1: not above the 1 s warning
  EXPECT_EQ(states[3], Health::warning);   // lag 2
  EXPECT_EQ(states[7], Health::critical);  // lag 6
}

TEST(Evaluate, BytesThresholdAloneRaisesState) {
  Harness h;
  WallTime t0{};
  auto s = h.run({primary(t0, 200u << 20), standby(t0, 200u << 20), standby(t0, 150u << 20)}, t0);
  EXPECT_EQ(channel(s, 2).lag_bytes, 50u << 20);
  EXPECT_EQ(s.nodes[2].state, Health::warning);
}

TEST(Evaluate, PrimaryUnreachableFallsBackToEngineFigureAndSaysSo) {
  Harness h;
  WallTime t0{};
  h.run({primary(t0, 100), standby(t0, 100), standby(t0, 100)}, t0);
  auto s = h.run({down(t0 + 1s), standby(t0 + 1s, 100, true, 0.4), standby(t0 + 1s, 100)}, t0 + 1s);
  EXPECT_EQ(channel(s, 1).lag_seconds, 0.4);
  EXPECT_TRUE(channel(s, 1).lag_from_engine);
  EXPECT_FALSE(channel(s, 1).lag_bytes);
  // No engine figure either: unknown, never 0.
  EXPECT_FALSE(channel(s, 2).lag_seconds);
  EXPECT_EQ(s.nodes[2].state, Health::unknown);
  EXPECT_EQ(s.primaries, 0);
  EXPECT_EQ(s.state, Health::critical);
}

TEST(Evaluate, DownReplicaHasNoLagAndUnknownState) {
  Harness h;
  WallTime t0{};
  auto p = primary(t0, 100);
  p.standbys.push_back({"pg2", "streaming", {}, {}, {}, {}, {}, {}, {}});
  auto s = h.run({p, standby(t0, 100), down(t0, CollectionError::timeout)}, t0);
  const auto& n = s.nodes[2];
  EXPECT_FALSE(n.up);
  EXPECT_EQ(n.role, Role::unknown);
  EXPECT_EQ(n.state, Health::unknown);
  ASSERT_EQ(n.channels.size(), 1u);
  EXPECT_FALSE(n.channels[0].lag_seconds);
  EXPECT_FALSE(n.channels[0].lag_bytes);
  EXPECT_EQ(n.channels[0].connected, false) << "pg3 is not in pg_stat_replication";
}

TEST(Evaluate, DisconnectedStreamIsCriticalAtOnceButLagStillMeasured) {
  Harness h;
  WallTime t0{};
  h.run({primary(t0, 100), standby(t0, 100), standby(t0, 100)}, t0);
  auto s =
      h.run({primary(t0 + 1s, 300), standby(t0 + 1s, 300), standby(t0 + 1s, 100, false)}, t0 + 1s);
  EXPECT_EQ(s.nodes[2].state, Health::critical);
  EXPECT_EQ(channel(s, 2).lag_bytes, 200u);
  EXPECT_DOUBLE_EQ(*channel(s, 2).lag_seconds, 1.0);
}

TEST(Evaluate, TwoWritablePrimariesAreSplitBrain) {
  Harness h;
  WallTime t0{};
  auto s = h.run({primary(t0, 100), primary(t0, 90), standby(t0, 100)}, t0);
  EXPECT_EQ(s.primaries, 2);
  EXPECT_EQ(s.state, Health::critical);
  EXPECT_EQ(s.primary, "pg1");
  // The reference stays on the previous primary while both claim the role.
  h.history.reference_primary = "pg2";
  s = h.run({primary(t0 + 1s, 100), primary(t0 + 1s, 95), standby(t0 + 1s, 100)}, t0 + 1s);
  EXPECT_EQ(s.primary, "pg2");
}

TEST(Evaluate, PromotedStandbyBecomesReferenceAndTimelineRestarts) {
  Harness h;
  WallTime t0{};
  h.run({primary(t0, 1000), standby(t0, 1000), standby(t0, 1000)}, t0);
  auto s = h.run({down(t0 + 1s), primary(t0 + 1s, 1200), standby(t0 + 1s, 1200)}, t0 + 1s);
  EXPECT_EQ(s.primary, "pg2");
  EXPECT_EQ(s.nodes[1].role, Role::primary);
  EXPECT_TRUE(s.nodes[1].channels.empty());
  EXPECT_EQ(channel(s, 2).lag_seconds, 0.0);
  EXPECT_EQ(h.history.timeline.primary(), "pg2");
}

TEST(Evaluate, StageLagsComeFromThePrimarysView) {
  Harness h;
  WallTime t0{};
  auto p = primary(t0, 1000);
  p.standbys.push_back({"pg2", "streaming", Position{0, 990, ""}, Position{0, 980, ""},
                        Position{0, 970, ""}, Position{0, 900, ""}, 0.001, 0.002, 0.5});
  auto s = h.run({p, standby(t0, 900), standby(t0, 1000)}, t0);
  ASSERT_TRUE(s.nodes[1].stage);
  EXPECT_EQ(s.nodes[1].stage->sent_bytes, 10u);
  EXPECT_EQ(s.nodes[1].stage->replay_bytes, 100u);
  EXPECT_EQ(s.nodes[1].stage->replay_seconds, 0.5);
  EXPECT_FALSE(s.nodes[2].stage) << "pg3 is not in pg_stat_replication";
}

TEST(ReplicaHealth, TableOfCases) {
  Thresholds t;
  t.lag_seconds_warning = 1;
  t.lag_seconds_critical = 5;
  t.lag_bytes_warning = Bytes{1000};
  t.lag_bytes_critical = Bytes{10000};
  struct Case {
    std::optional<double> seconds;
    std::optional<std::uint64_t> bytes;
    std::optional<bool> connected;
    bool up;
    Health want;
  };
  std::vector<Case> cases{
      {0.0, 0, true, true, Health::ok},
      {1.0, 1000, true, true, Health::ok},
      {1.01, 0, true, true, Health::warning},
      {0.0, 1001, true, true, Health::warning},
      {5.5, 0, true, true, Health::critical},
      {0.0, 20000, true, true, Health::critical},
      {0.0, 0, false, true, Health::critical},
      {std::nullopt, std::nullopt, true, true, Health::unknown},
      {std::nullopt, 5, true, true, Health::ok},
      {0.0, 0, true, false, Health::unknown},
  };
  for (const auto& c : cases) {
    ChannelStatus ch;
    ch.lag_seconds = c.seconds;
    ch.lag_bytes = c.bytes;
    ch.connected = c.connected;
    EXPECT_EQ(replica_health(ch, c.up, t), c.want)
        << "seconds=" << c.seconds.value_or(-1) << " bytes=" << c.bytes.value_or(0)
        << " connected=" << c.connected.value_or(false) << " up=" << c.up;
  }
}

}  // namespace
}  // namespace lagwatch
