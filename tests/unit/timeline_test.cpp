// Position timeline: lag in seconds read off the primary's recorded positions (design §2).
#include "timeline.h"

#include <gtest/gtest.h>

namespace lagwatch {
namespace {

using namespace std::chrono_literals;

Position pos(std::uint64_t offset, std::uint64_t segment = 0) { return {segment, offset, ""}; }

double lag_s(const PositionTimeline& t, const Position& p, WallTime at) {
  auto lag = t.lag(p, at);
  EXPECT_TRUE(lag.has_value());
  return lag ? std::chrono::duration<double>(lag->lag).count() : -1;
}

TEST(PositionTimeline, NoPrimarySampleYetMeansUnknown) {
  PositionTimeline t;
  EXPECT_FALSE(t.lag(pos(100), WallTime{} + 10s).has_value());
}

TEST(PositionTimeline, CaughtUpReplicaHasZeroLag) {
  PositionTimeline t;
  WallTime t0{};
  t.record("pg1", t0, pos(100));
  t.record("pg1", t0 + 1s, pos(200));
  EXPECT_EQ(lag_s(t, pos(200), t0 + 1s + 50ms), 0.0);
}

TEST(PositionTimeline, ReplicaAheadOfSampledPrimaryHasZeroLag) {
  PositionTimeline t;
  t.record("pg1", WallTime{}, pos(100));
  EXPECT_EQ(lag_s(t, pos(150), WallTime{} + 10ms), 0.0);
}

TEST(PositionTimeline, LagIsTimeSinceLatestPositionTheReplicaHas) {
  PositionTimeline t;
  WallTime t0{};
  for (int i = 0; i <= 10; ++i) t.record("pg1", t0 + i * 1s, pos(100 * (i + 1)));
  // Replayed 550: the primary was at 500 at t0+4s and at 600 at t0+5s.
  EXPECT_DOUBLE_EQ(lag_s(t, pos(550), t0 + 10s), 6.0);
  EXPECT_DOUBLE_EQ(lag_s(t, pos(500), t0 + 10s), 6.0);
  EXPECT_DOUBLE_EQ(lag_s(t, pos(1100), t0 + 10s), 0.0);
}

TEST(PositionTimeline, IdlePrimaryKeepsLagAtZero) {
  PositionTimeline t;
  WallTime t0{};
  t.record("pg1", t0, pos(100));
  for (int i = 1; i <= 600; ++i) t.record("pg1", t0 + i * 1s, pos(500));
  EXPECT_EQ(t.size(), 2u) << "a run of equal positions is kept as one entry";
  EXPECT_EQ(lag_s(t, pos(500), t0 + 600s), 0.0);
}

TEST(PositionTimeline, StuckReplicaLagGrowsOneSecondPerSecond) {
  PositionTimeline t;
  WallTime t0{};
  for (int i = 0; i < 30; ++i) {
    t.record("pg1", t0 + i * 1s, pos(1000 + 10 * i));
  }
  // Replay stopped at position 1100 (reached at t0+10s).
  for (int i = 11; i < 30; ++i)
    EXPECT_DOUBLE_EQ(lag_s(t, pos(1100), t0 + i * 1s), i - 10.0) << "at second " << i;
}

TEST(PositionTimeline, RingHorizonExceededGivesLowerBound) {
  PositionTimeline t(4);
  WallTime t0{};
  for (int i = 0; i < 10; ++i) t.record("pg1", t0 + i * 1s, pos(100 * (i + 1)));
  // Oldest kept entry: 700 at t0+6s. The replica has only 150.
  auto lag = t.lag(pos(150), t0 + 10s);
  ASSERT_TRUE(lag);
  EXPECT_TRUE(lag->beyond_horizon);
  EXPECT_EQ(lag->lag, 4s);
}

TEST(PositionTimeline, NewPrimaryStartsANewTimeline) {
  PositionTimeline t;
  WallTime t0{};
  t.record("pg1", t0, pos(100));
  t.record("pg1", t0 + 1s, pos(200));
  t.record("pg2", t0 + 2s, pos(50));
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.primary(), "pg2");
  EXPECT_EQ(lag_s(t, pos(50), t0 + 2s), 0.0);
}

TEST(PositionTimeline, PositionGoingBackwardsStartsANewTimeline) {
  PositionTimeline t;
  WallTime t0{};
  t.record("db1", t0, pos(100, 7));
  t.record("db1", t0 + 1s, pos(10, 1));  // RESET MASTER
  EXPECT_EQ(t.size(), 1u);
}

TEST(PositionTimeline, SegmentsOrderBeforeOffsets) {
  PositionTimeline t;
  WallTime t0{};
  t.record("db1", t0, pos(900, 1));
  t.record("db1", t0 + 1s, pos(100, 2));
  t.record("db1", t0 + 2s, pos(300, 2));
  EXPECT_DOUBLE_EQ(lag_s(t, pos(950, 1), t0 + 3s), 3.0);
  EXPECT_DOUBLE_EQ(lag_s(t, pos(200, 2), t0 + 3s), 2.0);
}

TEST(PositionTimeline, ReplicaSampledBeforePrimaryNeverGetsNegativeLag) {
  PositionTimeline t;
  WallTime t0{};
  t.record("pg1", t0, pos(100));
  t.record("pg1", t0 + 1s + 5ms, pos(200));
  EXPECT_EQ(lag_s(t, pos(150), t0 + 1s), 1.0);
  EXPECT_EQ(lag_s(t, pos(100), t0 - 1s), 0.0);
}

}  // namespace
}  // namespace lagwatch
