// Position timeline: lag in seconds read off the primary's recorded positions (design §2).
#include "timeline.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

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
  // Replayed 550: the primary was at 500 at t0+4s and at 600 at t0+5s, so it passed 550
  // half-way between.
  EXPECT_DOUBLE_EQ(lag_s(t, pos(550), t0 + 10s), 5.5);
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
  EXPECT_DOUBLE_EQ(lag_s(t, pos(200, 2), t0 + 3s), 1.5);
}

TEST(PositionTimeline, AcrossABinlogRotationTheEarlierSampleBoundsTheLag) {
  PositionTimeline t;
  WallTime t0{};
  t.record("db1", t0, pos(900, 1));
  t.record("db1", t0 + 1s, pos(100, 2));
  // Bytes between files are not known here: no interpolation, the conservative bound.
  EXPECT_DOUBLE_EQ(lag_s(t, pos(950, 1), t0 + 1s), 1.0);
}

TEST(PositionTimeline, ReplicaMillisecondsBehindUnderSteadyWritesReadsMillisecondsNotAnInterval) {
  PositionTimeline t;
  WallTime t0{};
  // 1,000 bytes/s written, sampled every second.
  for (int i = 0; i <= 5; ++i) t.record("db1", t0 + i * 1s, pos(10'000 + 1'000 * i));
  // The replica, sampled 2 ms after the primary, has everything but the last 8 ms of writes.
  EXPECT_NEAR(lag_s(t, pos(14'992), t0 + 5s + 2ms), 0.010, 1e-9);
}

TEST(PositionTimeline, LagNeverDiffersFromTheBracketingSamplesByMoreThanTheirSpan) {
  PositionTimeline t;
  WallTime t0{};
  // Bursty writes: 1 byte, then 10,000 bytes, then 1 byte.
  t.record("pg1", t0, pos(0));
  t.record("pg1", t0 + 1s, pos(1));
  t.record("pg1", t0 + 2s, pos(10'001));
  t.record("pg1", t0 + 3s, pos(10'002));
  for (std::uint64_t p = 1; p < 10'001; p += 997) {
    double lag = lag_s(t, pos(p), t0 + 3s);
    EXPECT_GE(lag, 1.0) << p;  // at most the newer sample's age
    EXPECT_LE(lag, 2.0) << p;  // at least the older sample's age
  }
}

TEST(PositionTimeline, ReplicaSampledBeforePrimaryNeverGetsNegativeLag) {
  PositionTimeline t;
  WallTime t0{};
  t.record("pg1", t0, pos(100));
  t.record("pg1", t0 + 1s + 5ms, pos(200));
  // The primary passed 150 about half-way between its samples, 0.4975 s before the replica's.
  EXPECT_NEAR(lag_s(t, pos(150), t0 + 1s), 0.4975, 1e-9);
  EXPECT_EQ(lag_s(t, pos(100), t0 - 1s), 0.0);
}

// The timeline keeps a run's segment once, not in every entry. Against the plain form of
// design §2 — every sample with its whole position, searched as one ordered list — over
// random walks through binlog files, with a small ring that drops entries (and whole files)
// from the front, asked about positions in, between and around the recorded ones.
TEST(PositionTimeline, SegmentRunsGiveTheSameLagAsEveryEntryWithItsWholePosition) {
  struct Sample {
    WallTime at;
    Position position;
  };
  auto reference = [](const std::vector<Sample>& kept, const Position& replayed,
                      WallTime at) -> std::optional<TimelineLag> {
    if (kept.empty()) return std::nullopt;
    if (replayed >= kept.back().position) return TimelineLag{};
    auto beyond =
        std::upper_bound(kept.begin(), kept.end(), replayed,
                         [](const Position& p, const Sample& s) { return p < s.position; });
    if (beyond == kept.begin())
      return TimelineLag{std::max(at - kept.front().at, std::chrono::nanoseconds::zero()), true};
    const Sample& before = *std::prev(beyond);
    WallTime passed = before.at;
    if (replayed != before.position && before.position.segment == beyond->position.segment) {
      double fraction = static_cast<double>(replayed.offset - before.position.offset) /
                        static_cast<double>(beyond->position.offset - before.position.offset);
      passed +=
          std::chrono::duration_cast<std::chrono::nanoseconds>((beyond->at - before.at) * fraction);
    }
    return TimelineLag{std::max(at - passed, std::chrono::nanoseconds::zero()), false};
  };

  std::mt19937_64 random(20261201);
  for (int walk = 0; walk < 200; ++walk) {
    const std::size_t capacity = 1 + random() % 12;
    PositionTimeline t(capacity);
    std::vector<Sample> kept;
    Position at_primary = pos(random() % 1000, random() % 3);
    WallTime now{};
    for (int cycle = 0; cycle < 60; ++cycle) {
      now += std::chrono::milliseconds(200 + random() % 1600);
      switch (random() % 6) {
        case 0:
          break;  // idle: the same position again
        case 1:
          at_primary = pos(4 + random() % 50, at_primary.segment + 1 + random() % 2);
          break;
        default:
          at_primary.offset += 1 + random() % 5000;
      }
      t.record("db1", now, at_primary);
      if (!kept.empty() && kept.back().position == at_primary) {
        kept.back().at = now;
      } else {
        kept.push_back({now, at_primary});
        if (kept.size() > capacity) kept.erase(kept.begin());
      }
      ASSERT_EQ(t.size(), kept.size());
      for (int ask = 0; ask < 8; ++ask) {
        const Sample& near = kept[random() % kept.size()];
        Position replayed = near.position;
        switch (random() % 4) {
          case 0:
            break;
          case 1:
            replayed.offset += random() % 3000;
            break;
          case 2:
            replayed.offset -= std::min<std::uint64_t>(replayed.offset, random() % 3000);
            break;
          default:
            replayed = pos(random() % 100, replayed.segment - std::min<std::uint64_t>(
                                                                  replayed.segment, random() % 2));
        }
        WallTime asked = now + std::chrono::milliseconds(random() % 500) - 100ms;
        auto want = reference(kept, replayed, asked);
        auto got = t.lag(replayed, asked);
        ASSERT_EQ(got.has_value(), want.has_value());
        EXPECT_EQ(got->lag, want->lag) << "walk " << walk << " cycle " << cycle << " replayed "
                                       << replayed.segment << ":" << replayed.offset;
        EXPECT_EQ(got->beyond_horizon, want->beyond_horizon) << "walk " << walk;
      }
    }
  }
}

}  // namespace
}  // namespace lagwatch
