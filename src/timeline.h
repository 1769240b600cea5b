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
  // Where the primary was and when: the position's numbers only, not its text, 24 bytes
  // (a full timeline is 96 KiB per cluster; with the text, a MySQL position took ~100 bytes).
  struct Entry {
    WallTime at;
    std::uint64_t segment;
    std::uint64_t offset;
    friend auto operator<=>(const Entry& e, const Position& p) {
      if (auto c = e.segment <=> p.segment; c != 0) return c;
      return e.offset <=> p.offset;
    }
    friend bool operator==(const Entry& e, const Position& p) {
      return e.segment == p.segment && e.offset == p.offset;
    }
  };
  std::size_t capacity_;
  std::string primary_;
  // Oldest first; positions non-decreasing. While the primary stands still only the newest
  // time of a run of equal positions is kept (that is the only one lag() can pick), so an
  // idle primary does not push history out of the ring.
  std::deque<Entry> entries_;
};

}  // namespace lagwatch
