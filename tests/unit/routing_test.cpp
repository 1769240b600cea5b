// Routing policy: qualification, rise/fall hysteresis, min_serving, primary fallback,
// generations, read-your-writes tokens.
#include "routing.h"

#include <gtest/gtest.h>

namespace lagwatch {
namespace {

using namespace std::chrono_literals;

NodeStatus replica(const std::string& name, std::optional<double> lag, bool up = true,
                   bool connected = true) {
  NodeStatus n;
  n.name = name;
  n.address = name + ":5432";
  n.up = up;
  n.role = up ? Role::replica : Role::unknown;
  ChannelStatus c;
  c.lag_seconds = lag;
  c.lag_bytes = 0;
  c.connected = connected;
  c.position = Position{0, 1000, "0/3E8"};
  n.channels.push_back(c);
  n.main_channel = 0;
  n.state = Health::ok;
  return n;
}

NodeStatus primary(const std::string& name) {
  NodeStatus n;
  n.name = name;
  n.address = name + ":5432";
  n.up = true;
  n.role = Role::primary;
  n.writable = true;
  n.position = Position{0, 2000, "0/7D0"};
  return n;
}

ClusterSnapshot cluster(std::vector<NodeStatus> replicas) {
  ClusterSnapshot s;
  s.name = "orders";
  s.engine = "postgres";
  s.primaries = 1;
  s.primary = "pg1";
  s.nodes.push_back(primary("pg1"));
  for (auto& r : replicas) s.nodes.push_back(std::move(r));
  return s;
}

std::vector<std::string> names(const ReplicaList& l) {
  std::vector<std::string> out;
  for (const auto& e : l.replicas) out.push_back(e.node + (e.degraded ? "(degraded)" : ""));
  return out;
}

RoutingConfig policy() {
  RoutingConfig r;
  r.max_lag_seconds = 5.0;
  r.rise = 3;
  r.fall = 1;
  r.min_serving = 0;
  r.fallback_to_primary = true;
  return r;
}

TEST(Routing, QualifiesOnlyReachableConnectedReplicasWithinMaxLag) {
  auto r = policy();
  EXPECT_TRUE(qualifies(replica("a", 0.0), r));
  EXPECT_TRUE(qualifies(replica("a", 5.0), r));
  EXPECT_FALSE(qualifies(replica("a", 5.01), r));
  EXPECT_FALSE(qualifies(replica("a", std::nullopt), r)) << "unknown lag never qualifies";
  EXPECT_FALSE(qualifies(replica("a", 0.0, false), r));
  EXPECT_FALSE(qualifies(replica("a", 0.0, true, false), r)) << "disconnected";
  EXPECT_FALSE(qualifies(primary("p"), r));
  r.max_lag_bytes = Bytes{100};
  auto big = replica("a", 0.0);
  big.channels[0].lag_bytes = 101;
  EXPECT_FALSE(qualifies(big, r));
}

TEST(Routing, ReplayStoppedBehindThePrimaryLeavesBeforeMaxLag) {
  auto r = policy();
  auto stopped = [](double lag, std::uint64_t bytes) {
    auto n = replica("a", lag);
    n.channels[0].applying = false;
    n.channels[0].lag_bytes = bytes;
    return n;
  };
  EXPECT_FALSE(qualifies(stopped(0.3, 4096), r)) << "falls further behind every second";
  EXPECT_FALSE(qualifies(stopped(0.0, 4096), r)) << "behind by bytes, not yet by time";
  EXPECT_TRUE(qualifies(stopped(0.0, 0), r)) << "stopped on an idle primary: data is current";
  auto applying = stopped(0.3, 4096);
  applying.channels[0].applying = true;
  EXPECT_TRUE(qualifies(applying, r));
  auto unknown = stopped(0.3, 4096);
  unknown.channels[0].applying.reset();
  EXPECT_TRUE(qualifies(unknown, r)) << "applying unknown: the lag threshold alone decides";
}

TEST(Routing, FirstSightListsQualifyingReplicasAtOnce) {
  std::map<std::string, RoutingMemory> memory;
  auto s = cluster({replica("pg2", 0.1), replica("pg3", 9.0)});
  apply_routing(s, policy(), memory);
  EXPECT_EQ(names(s.list), std::vector<std::string>{"pg2"});
  EXPECT_TRUE(s.nodes[1].routable);
  EXPECT_FALSE(s.nodes[2].routable);
  EXPECT_EQ(s.list.fallback, "none");
  ASSERT_TRUE(s.list.primary);
  EXPECT_EQ(s.list.primary->node, "pg1");
}

TEST(Routing, OscillatingAroundMaxLagDoesNotFlap) {
  std::map<std::string, RoutingMemory> memory;
  auto r = policy();
  std::vector<double> lags{1, 6, 4, 6, 4, 4, 6, 4, 4, 4, 4};
  std::string membership;
  for (double lag : lags) {
    auto s = cluster({replica("pg2", lag)});
    apply_routing(s, r, memory);
    membership += s.nodes[1].routable ? "L" : "-";
  }
  // fall=1: out at the first bad sample; rise=3: back only after three good ones in a row.
  EXPECT_EQ(membership, "L--------LL");
}

TEST(Routing, FallGreaterThanOneToleratesSingleBadSamples) {
  std::map<std::string, RoutingMemory> memory;
  auto r = policy();
  r.fall = 2;
  std::string membership;
  for (double lag : {1.0, 6.0, 1.0, 6.0, 6.0}) {
    auto s = cluster({replica("pg2", lag)});
    apply_routing(s, r, memory);
    membership += s.nodes[1].routable ? "L" : "-";
  }
  EXPECT_EQ(membership, "LLLL-");
}

TEST(Routing, UnreachableReplicaLeavesAtOnceWhateverFall) {
  std::map<std::string, RoutingMemory> memory;
  auto r = policy();
  r.fall = 5;
  auto s = cluster({replica("pg2", 0.1)});
  apply_routing(s, r, memory);
  EXPECT_TRUE(s.nodes[1].routable);
  s = cluster({replica("pg2", std::nullopt, false)});
  apply_routing(s, r, memory);
  EXPECT_FALSE(s.nodes[1].routable);
}

TEST(Routing, MinServingKeepsLeastLaggedReachableFlaggedDegraded) {
  std::map<std::string, RoutingMemory> memory;
  auto r = policy();
  r.min_serving = 1;
  auto s = cluster({replica("pg2", 30.0), replica("pg3", 12.0), replica("pg4", std::nullopt, false)});
  apply_routing(s, r, memory);
  EXPECT_EQ(names(s.list), std::vector<std::string>{"pg3(degraded)"});
  EXPECT_EQ(s.list.fallback, "degraded");
  EXPECT_EQ(s.list.replicas[0].weight, 1);
  EXPECT_TRUE(s.nodes[2].routable);
}

TEST(Routing, NoReplicaAtAllFallsBackToPrimary) {
  std::map<std::string, RoutingMemory> memory;
  auto r = policy();
  r.min_serving = 1;
  auto s = cluster({replica("pg2", std::nullopt, false), replica("pg3", std::nullopt, false)});
  apply_routing(s, r, memory);
  EXPECT_TRUE(s.list.replicas.empty());
  EXPECT_EQ(s.list.fallback, "primary");
  r.fallback_to_primary = false;
  apply_routing(s, r, memory);
  EXPECT_EQ(s.list.fallback, "none");
}

TEST(Routing, NoPrimaryListedInSplitBrain) {
  std::map<std::string, RoutingMemory> memory;
  auto s = cluster({replica("pg2", 0.0)});
  s.primaries = 2;
  apply_routing(s, policy(), memory);
  EXPECT_FALSE(s.list.primary);
}

TEST(Routing, WeightFollowsLag) {
  auto r = policy();
  EXPECT_EQ(replica_weight(replica("a", 0.0), r, false), 100);
  EXPECT_EQ(replica_weight(replica("a", 2.5), r, false), 55);
  EXPECT_EQ(replica_weight(replica("a", 5.0), r, false), 10);
  EXPECT_EQ(replica_weight(replica("a", 0.0), r, true), 1);
}

TEST(Routing, GenerationChangesOnlyWithMembershipAndNeverGoesBack) {
  WallTime now = WallTime{} + 1700000000000ms;
  ReplicaList empty;
  ReplicaList a;
  a.replicas.push_back({"pg2", "", Health::ok, 0.1, 0, {}, "", {}, 100, false});
  auto g1 = next_generation(empty, a, now);
  EXPECT_EQ(g1, 1700000000000u) << "first generation is the clock in ms";
  a.generation = g1;
  ReplicaList same = a;
  same.replicas[0].lag_seconds = 3.0;  // lag and weight changes are not membership changes
  same.replicas[0].weight = 40;
  EXPECT_EQ(next_generation(a, same, now + 1s), g1);
  ReplicaList degraded = a;
  degraded.replicas[0].degraded = true;
  EXPECT_EQ(next_generation(a, degraded, now + 1s), g1 + 1000);
  // A clock that went backwards (or many changes within one ms) still moves forward.
  EXPECT_EQ(next_generation(a, degraded, now - 1h), g1 + 1);
}

TEST(Routing, PostgresLsnTokens) {
  ChannelStatus c;
  c.position = Position{0, 0x3000060, ""};
  EXPECT_EQ(position_reached("postgres", "0/3000060", c), true);
  EXPECT_EQ(position_reached("postgres", "0/3000061", c), false);
  EXPECT_EQ(position_reached("postgres", "0/2FFFFFF", c), true);
  EXPECT_EQ(position_reached("postgres", "nonsense", c), std::nullopt);
}

TEST(Routing, MariadbGtidTokensCompareEveryDomain) {
  ChannelStatus c;
  c.gtid_position = "0-1-42,1-2-7";
  EXPECT_EQ(position_reached("mysql", "0-1-42", c), true);
  EXPECT_EQ(position_reached("mysql", "0-1-43", c), false);
  EXPECT_EQ(position_reached("mysql", "0-1-40,1-2-7", c), true);
  EXPECT_EQ(position_reached("mysql", "2-1-1", c), false) << "unknown domain";
  EXPECT_EQ(position_reached("mysql", "0-1", c), std::nullopt);
}

TEST(Routing, MysqlGtidSetTokensRequireContainment) {
  ChannelStatus c;
  c.gtid_position = "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-42:50-60";
  EXPECT_EQ(position_reached("mysql", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42", c), true);
  EXPECT_EQ(position_reached("mysql", "3e11fa47-71ca-11e1-9e33-c80aa9429562:55", c), true);
  EXPECT_EQ(position_reached("mysql", "3e11fa47-71ca-11e1-9e33-c80aa9429562:43", c), false);
  EXPECT_EQ(position_reached("mysql", "aaaaaaaa-71ca-11e1-9e33-c80aa9429562:1", c), false);
}

}  // namespace
}  // namespace lagwatch
