// Time behind an interface, so lag and scheduling logic is tested with a clock the test drives.
#pragma once

#include <chrono>

namespace lagwatch {

// The exporter's wall clock. Every lag figure is a difference of two readings of this one
// clock, so database clocks never enter a measurement.
using WallTime = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual WallTime now() const = 0;
};

class SystemClock final : public Clock {
 public:
  WallTime now() const override { return std::chrono::system_clock::now(); }
};

// A clock that moves only when the test says so.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(WallTime start = WallTime{} + std::chrono::hours(24 * 365 * 50))
      : now_(start) {}
  WallTime now() const override { return now_; }
  void advance(std::chrono::nanoseconds d) { now_ += d; }
  void set(WallTime t) { now_ = t; }

 private:
  WallTime now_;
};

}  // namespace lagwatch
