// Position timeline (see timeline.h).
#include "timeline.h"

#include <algorithm>

namespace lagwatch {

void PositionTimeline::record(const std::string& primary, WallTime at, const Position& position) {
  if (primary != primary_ || (!entries_.empty() && position < entries_.back().position)) {
    entries_.clear();
    primary_ = primary;
  }
  if (!entries_.empty() && entries_.back().position == position) {
    entries_.back().at = std::max(entries_.back().at, at);
    return;
  }
  entries_.push_back({at, position});
  while (entries_.size() > capacity_) entries_.pop_front();
}

std::optional<TimelineLag> PositionTimeline::lag(const Position& replayed, WallTime at) const {
  if (entries_.empty()) return std::nullopt;
  if (replayed >= entries_.back().position) return TimelineLag{};
  // First entry whose position is beyond `replayed`; the one before it is the latest the
  // replica has fully replayed.
  auto beyond = std::upper_bound(
      entries_.begin(), entries_.end(), replayed,
      [](const Position& p, const Entry& e) { return p < e.position; });
  if (beyond == entries_.begin()) {
    auto age = at - entries_.front().at;
    return TimelineLag{std::max(age, std::chrono::nanoseconds::zero()), true};
  }
  auto caught_up_to = std::prev(beyond)->at;
  return TimelineLag{std::max(at - caught_up_to, std::chrono::nanoseconds::zero()), false};
}

std::optional<Position> PositionTimeline::newest_position() const {
  if (entries_.empty()) return std::nullopt;
  return entries_.back().position;
}

void PositionTimeline::clear() {
  entries_.clear();
  primary_.clear();
}

}  // namespace lagwatch
