// Cycle phases: clusters spread their cycles over the interval instead of starting together.
#include "scheduler.h"

#include <gtest/gtest.h>

#include <array>
#include <string>

namespace lagwatch {
namespace {

using namespace std::chrono_literals;

TEST(CyclePhase, is_inside_the_interval_and_the_same_every_time) {
  for (auto interval : {Duration(250ms), Duration(1s), Duration(10s)})
    for (const auto* name : {"orders", "users", "", "c042"}) {
      auto phase = cycle_phase(name, interval);
      EXPECT_GE(phase.count(), 0) << name;
      EXPECT_LT(phase, interval) << name;
      EXPECT_EQ(phase, cycle_phase(name, interval)) << name;
    }
}

TEST(CyclePhase, clusters_named_alike_spread_over_the_interval) {
  // 100 clusters named c000..c099: every tenth of the interval gets some, none gets a crowd.
  std::array<int, 10> tenths{};
  for (int i = 0; i < 100; ++i) {
    char name[8];
    std::snprintf(name, sizeof name, "c%03d", i);
    ++tenths[static_cast<std::size_t>(cycle_phase(name, 1s) / 100ms)];
  }
  for (std::size_t t = 0; t < tenths.size(); ++t) {
    EXPECT_GE(tenths[t], 3) << "tenth " << t;
    EXPECT_LE(tenths[t], 20) << "tenth " << t;
  }
}

}  // namespace
}  // namespace lagwatch
