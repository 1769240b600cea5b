// Position timeline (see timeline.h).
#include "timeline.h"

#include <algorithm>
#include <iterator>

namespace lagwatch {

void PositionTimeline::record(const std::string& primary, WallTime at, const Position& position) {
  bool starts_anew = primary != primary_;
  if (!starts_anew && !entries_.empty()) {
    Position newest{segments_.back().segment, entries_.back().offset, {}};
    if (position == newest) {
      entries_.back().at = std::max(entries_.back().at, at);
      return;
    }
    starts_anew = position < newest;
  }
  if (starts_anew) {
    clear();
    primary_ = primary;
  }
  if (segments_.empty() || segments_.back().segment != position.segment)
    segments_.push_back({dropped_ + entries_.size(), position.segment});
  entries_.push_back({at, position.offset});
  while (entries_.size() > capacity_) {
    entries_.pop_front();
    ++dropped_;
    while (segments_.size() > 1 && segments_[1].first <= dropped_) segments_.pop_front();
  }
}

std::size_t PositionTimeline::begin_of(const SegmentRun& run) const {
  return static_cast<std::size_t>(std::max(run.first, dropped_) - dropped_);
}

std::uint64_t PositionTimeline::segment_at(std::size_t index) const {
  auto run =
      std::upper_bound(segments_.begin(), segments_.end(), dropped_ + index,
                       [](std::uint64_t number, const SegmentRun& r) { return number < r.first; });
  return std::prev(run)->segment;
}

std::size_t PositionTimeline::first_beyond(const Position& replayed) const {
  // Runs of earlier segments lie wholly at or before `replayed`, runs of later ones wholly
  // beyond it; within its own segment's run, entries are ordered by offset.
  auto run = std::lower_bound(
      segments_.begin(), segments_.end(), replayed.segment,
      [](const SegmentRun& r, std::uint64_t segment) { return r.segment < segment; });
  if (run == segments_.end()) return entries_.size();
  std::size_t begin = begin_of(*run);
  if (run->segment != replayed.segment) return begin;
  std::size_t end = std::next(run) == segments_.end() ? entries_.size() : begin_of(*std::next(run));
  auto beyond =
      std::upper_bound(entries_.begin() + static_cast<std::ptrdiff_t>(begin),
                       entries_.begin() + static_cast<std::ptrdiff_t>(end), replayed.offset,
                       [](std::uint64_t offset, const Entry& e) { return offset < e.offset; });
  return static_cast<std::size_t>(beyond - entries_.begin());
}

std::optional<TimelineLag> PositionTimeline::lag(const Position& replayed, WallTime at) const {
  if (entries_.empty()) return std::nullopt;
  std::size_t beyond = first_beyond(replayed);
  if (beyond == entries_.size()) return TimelineLag{};  // at or past the newest position
  if (beyond == 0) {
    auto age = at - entries_.front().at;
    return TimelineLag{std::max(age, std::chrono::nanoseconds::zero()), true};
  }
  // The primary passed `replayed`, which lies between the latest entry it has fully replayed
  // (`before`) and the next one (`after`), some time in (before.at, after.at]. Taking
  // `before.at` would overstate the lag of every replica that is merely a few milliseconds
  // behind by up to a whole interval — a caught-up MariaDB replica under steady writes would
  // read one interval, at the warning threshold. Under writes the position advances nearly in
  // proportion to time, so the point is placed by position between the two samples; the error
  // stays within the one interval either way. Across binlog files the byte distance is unknown
  // here, so the earlier sample is kept.
  const Entry& before = entries_[beyond - 1];
  const Entry& after = entries_[beyond];
  WallTime passed = before.at;
  if (replayed.offset != before.offset && segment_at(beyond - 1) == segment_at(beyond)) {
    double fraction = static_cast<double>(replayed.offset - before.offset) /
                      static_cast<double>(after.offset - before.offset);
    passed +=
        std::chrono::duration_cast<std::chrono::nanoseconds>((after.at - before.at) * fraction);
  }
  return TimelineLag{std::max(at - passed, std::chrono::nanoseconds::zero()), false};
}

void PositionTimeline::clear() {
  entries_.clear();
  segments_.clear();
  dropped_ = 0;
  primary_.clear();
}

}  // namespace lagwatch
