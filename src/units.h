// Units an operator writes in the config and reads in the API: durations and byte sizes.
// One parser for each, shared by the config loader and the HTTP query parameters.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lagwatch {

using Duration = std::chrono::nanoseconds;
using Seconds = std::chrono::duration<double>;

// A byte count. A distinct type so a size is never mixed up with a count or a position.
struct Bytes {
  std::uint64_t value = 0;
  auto operator<=>(const Bytes&) const = default;
};

// Parses Go/Prometheus-style durations: "250ms", "1s", "1.5s", "2m", "1h30m", "100us", "0".
// Units: ns, us (or µs), ms, s, m, h, d. A bare number other than 0 is refused: a unit
// must be written so "5" is never read as 5 ns when 5 s was meant.
// Returns nullopt and sets `error` (when given) to a sentence saying what is wrong.
std::optional<Duration> parse_duration(std::string_view text, std::string* error = nullptr);

// Parses sizes: "1024", "512B", "10KiB", "10MiB", "1.5GiB", "10kB", "10MB", "1GB", "1TiB".
// IEC units KiB..EiB (KiB = 1024) and SI units kB..EB (kB = 1000); a bare integer is bytes.
// A fraction with a unit is rounded down to whole bytes ("1.1KiB" is 1126).
std::optional<Bytes> parse_bytes(std::string_view text, std::string* error = nullptr);

// "1h30m", "1.5s", "250ms", "0s": an exact form parse_duration reads back. From one second
// up: d, h, m, s parts, largest first, zero parts left out, seconds with a fraction when
// needed; below one second: the largest of ms, us, ns with a whole part ("1.5ms").
std::string format_duration(Duration d);

// Seconds as a double, for metrics and JSON.
inline double to_seconds(Duration d) { return std::chrono::duration_cast<Seconds>(d).count(); }

}  // namespace lagwatch
