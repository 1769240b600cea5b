// Position timeline (see timeline.h).
#include "timeline.h"

#include <algorithm>

namespace lagwatch {

void PositionTimeline::record(const std::string& primary, WallTime at, const Position& position) {
  if (primary != primary_ || (!entries_.empty() && entries_.back() > position)) {
    entries_.clear();
    primary_ = primary;
  }
  if (!entries_.empty() && entries_.back() == position) {
    entries_.back().at = std::max(entries_.back().at, at);
    return;
  }
  entries_.push_back({at, position.segment, position.offset});
  while (entries_.size() > capacity_) entries_.pop_front();
}

namespace {

// When the primary passed `replayed`, which lies in [before.position, after.position): some
// time in (before.at, after.at]. Taking `before.at` would overstate the lag of every replica
// that is merely a few milliseconds behind by up to a whole interval — a caught-up MariaDB
// replica under steady writes would read one interval, at the warning threshold. Under
// writes the position advances nearly in proportion to time, so the point is placed by
// position between the two samples; the error stays within the one interval either way.
// Across binlog files the byte distance is unknown here, so the earlier sample is kept.
WallTime passed_at(const auto& before, const auto& after, const Position& replayed) {
  if (before == replayed || before.segment != after.segment) return before.at;
  double fraction = static_cast<double>(replayed.offset - before.offset) /
                    static_cast<double>(after.offset - before.offset);
  auto span = after.at - before.at;
  return before.at + std::chrono::duration_cast<std::chrono::nanoseconds>(span * fraction);
}

}  // namespace

std::optional<TimelineLag> PositionTimeline::lag(const Position& replayed, WallTime at) const {
  if (entries_.empty()) return std::nullopt;
  if (entries_.back() <= replayed) return TimelineLag{};
  // First entry whose position is beyond `replayed`; the one before it is the latest the
  // replica has fully replayed.
  auto beyond = std::upper_bound(
      entries_.begin(), entries_.end(), replayed,
      [](const Position& p, const Entry& e) { return e > p; });
  if (beyond == entries_.begin()) {
    auto age = at - entries_.front().at;
    return TimelineLag{std::max(age, std::chrono::nanoseconds::zero()), true};
  }
  const Entry& before = *std::prev(beyond);
  return TimelineLag{std::max(at - passed_at(before, *beyond, replayed),
                              std::chrono::nanoseconds::zero()),
                     false};
}

void PositionTimeline::clear() {
  entries_.clear();
  primary_.clear();
}

}  // namespace lagwatch
