// Sharding: rendezvous hashing splits clusters into disjoint shards whose union is the fleet.
#include "shard.h"

#include <gtest/gtest.h>

#include <set>

namespace lagwatch {
namespace {

TEST(Shard, TwoShardsAreDisjointAndCoverEveryCluster) {
  std::set<std::string> shard0, shard1;
  for (int i = 0; i < 10; ++i) {
    std::string name = "cluster-" + std::to_string(i);
    (shard_of(name, 2) == 0 ? shard0 : shard1).insert(name);
  }
  EXPECT_FALSE(shard0.empty());
  EXPECT_FALSE(shard1.empty());
  EXPECT_EQ(shard0.size() + shard1.size(), 10u);
}

TEST(Shard, SpreadsEvenlyAndMovesOnlyWhatTheNewShardWins) {
  std::vector<int> counts(4);
  int moved = 0, moved_elsewhere = 0;
  for (int i = 0; i < 4000; ++i) {
    std::string name = "orders-" + std::to_string(i);
    int before = shard_of(name, 3);
    int after = shard_of(name, 4);
    ++counts[static_cast<std::size_t>(after)];
    if (before != after) {
      ++moved;
      if (after != 3) ++moved_elsewhere;
    }
  }
  for (int c : counts) EXPECT_NEAR(c, 1000, 150) << "shard sizes";
  EXPECT_NEAR(moved, 1000, 150) << "about a quarter moves to the new shard";
  EXPECT_EQ(moved_elsewhere, 0) << "nothing moves between the old shards";
}

TEST(Shard, KeepOwnShardFiltersTheConfig) {
  Config config;
  for (int i = 0; i < 10; ++i) {
    ClusterConfig c;
    c.name = "c" + std::to_string(i);
    config.clusters.push_back(c);
  }
  Config a = config, b = config;
  a.server.shard_count = b.server.shard_count = 2;
  b.server.shard_index = 1;
  keep_own_shard(a);
  keep_own_shard(b);
  std::set<std::string> names;
  for (const auto& c : a.clusters) names.insert(c.name);
  for (const auto& c : b.clusters) EXPECT_FALSE(names.count(c.name)) << c.name << " in both";
  for (const auto& c : b.clusters) names.insert(c.name);
  EXPECT_EQ(names.size(), 10u);
}

}  // namespace
}  // namespace lagwatch
