// The position timeline of design §2: when the primary was at which position, on the
// exporter's clock. Lag in seconds is read off it for any replayed position.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "clock.h"
#include "position.h"

namespace lagwatch {

struct TimelineLag {
  std::chrono::nanoseconds lag{};
  // True when the position is older than everything still recorded: the lag is then at
  // least `lag` (the age of the oldest entry) and may be more.
  bool beyond_horizon = false;
};

class PositionTimeline {
 public:
  explicit PositionTimeline(std::size_t capacity = 4096) : capacity_(capacity) {}

  // Records that the primary `primary` was at `position` at `at`. A different primary than
  // the last one recorded starts a new timeline: positions of two servers are not comparable.
  // A position lower than the newest one (a primary restored from backup, a new timeline)
  // also starts anew.
  void record(const std::string& primary, WallTime at, const Position& position);

  // Lag of a replica that had replayed `replayed` at `at`: at − the time the primary passed
  // `replayed`, placed by position between the latest recorded sample at or before it and the
  // next one (so never more than one interval off); 0 when replayed ≥ the newest recorded
  // position; nullopt when nothing is recorded yet.
  std::optional<TimelineLag> lag(const Position& replayed, WallTime at) const;

  const std::string& primary() const { return primary_; }
  std::size_t size() const { return entries_.size(); }
  void clear();

 private:
  // Where the primary was and when, 16 bytes: a full timeline is 64 KiB per cluster. The
  // segment (a binlog file's number; always 0 on PostgreSQL) changes rarely, so it is kept
  // once per run of entries in `segments_`, not in every entry.
  struct Entry {
    WallTime at;
    std::uint64_t offset;
  };
  struct SegmentRun {
    std::uint64_t first;  // number of its first entry, counted since the timeline began
    std::uint64_t segment;
  };
  // Index in entries_ of the first entry past `replayed`, as upper_bound would find it.
  std::size_t first_beyond(const Position& replayed) const;
  std::uint64_t segment_at(std::size_t index) const;
  // Index in entries_ of the first entry of a run (its first entries may have been dropped).
  std::size_t begin_of(const SegmentRun& run) const;

  std::size_t capacity_;
  std::string primary_;
  // Oldest first; positions non-decreasing. While the primary stands still only the newest
  // time of a run of equal positions is kept (that is the only one lag() can pick), so an
  // idle primary does not push history out of the ring.
  std::deque<Entry> entries_;
  std::deque<SegmentRun> segments_;  // oldest first, segments increasing
  std::uint64_t dropped_ = 0;        // entries dropped from the front since the timeline began
};

}  // namespace lagwatch
