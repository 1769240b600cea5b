// Durations and byte sizes as operators write them: one parser and one formatter for each.
#include "units.h"

#include <array>
#include <initializer_list>
#include <limits>
#include <utility>

namespace lagwatch {
namespace {

constexpr std::uint64_t kMaxNanoseconds = std::numeric_limits<Duration::rep>::max();
constexpr std::uint64_t kMaxBytes = std::numeric_limits<std::uint64_t>::max();

constexpr std::uint64_t kMicrosecond = 1000;
constexpr std::uint64_t kMillisecond = 1000 * kMicrosecond;
constexpr std::uint64_t kSecond = 1000 * kMillisecond;
constexpr std::uint64_t kMinute = 60 * kSecond;
constexpr std::uint64_t kHour = 60 * kMinute;
constexpr std::uint64_t kDay = 24 * kHour;

struct Unit {
  std::string_view name;
  std::uint64_t factor;
};

constexpr std::array<Unit, 9> kDurationUnits = {{
    {"ns", 1},
    {"us", kMicrosecond},
    {"\u00b5s", kMicrosecond},  // MICRO SIGN, as Go writes it
    {"\u03bcs", kMicrosecond},  // GREEK SMALL LETTER MU, which looks the same
    {"ms", kMillisecond},
    {"s", kSecond},
    {"m", kMinute},
    {"h", kHour},
    {"d", kDay},
}};

constexpr std::array<Unit, 13> kSizeUnits = {{
    {"B", 1},
    {"kB", 1000},
    {"MB", 1000'000},
    {"GB", 1000'000'000},
    {"TB", 1000'000'000'000},
    {"PB", 1000'000'000'000'000},
    {"EB", 1000'000'000'000'000'000},
    {"KiB", 1ULL << 10},
    {"MiB", 1ULL << 20},
    {"GiB", 1ULL << 30},
    {"TiB", 1ULL << 40},
    {"PiB", 1ULL << 50},
    {"EiB", 1ULL << 60},
}};

constexpr std::string_view kDurationHint = R"(use a number with a unit, e.g. "250ms", "1s", "2m")";
constexpr std::string_view kSizeHint =
    R"(use a number of bytes or a number with a unit, e.g. "4096", "512KiB", "10MiB", "1.5GB")";

template <std::size_t N>
const Unit* find_unit(const std::array<Unit, N>& units, std::string_view name) {
  for (const Unit& unit : units) {
    if (unit.name == name) return &unit;
  }
  return nullptr;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string in_quotes(std::string_view text) { return "\"" + std::string(text) + "\""; }

template <typename T>
std::optional<T> fail(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
  return std::nullopt;
}

// A decimal number as written, without sign or exponent: "1.5" is {"1", "5"}.
struct Decimal {
  std::string_view whole;
  std::string_view fraction;
};

// Takes "<digits>" or "<digits>.<digits>" off the front of `text`.
std::optional<Decimal> take_decimal(std::string_view& text) {
  std::size_t i = 0;
  while (i < text.size() && is_digit(text[i])) ++i;
  if (i == 0) return std::nullopt;
  Decimal number{text.substr(0, i), {}};
  if (i < text.size() && text[i] == '.') {
    const std::size_t start = ++i;
    while (i < text.size() && is_digit(text[i])) ++i;
    if (i == start) return std::nullopt;
    number.fraction = text.substr(start, i - start);
  }
  text.remove_prefix(i);
  return number;
}

// number * factor, rounded down; nullopt when it does not fit in 64 bits.
std::optional<std::uint64_t> scale(const Decimal& number, std::uint64_t factor) {
  std::uint64_t whole = 0;
  for (char c : number.whole) {
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (whole > (kMaxBytes - digit) / 10) return std::nullopt;
    whole = whole * 10 + digit;
  }
  if (whole > kMaxBytes / factor) return std::nullopt;
  // Horner's scheme from the last digit, rounding down at each step: exact, because
  // floor((a + floor(b)) / 10) == floor((a + b) / 10) for an integer a. Every step stays
  // below factor, so 10 * factor (at most 10 EiB) is the largest intermediate value.
  std::uint64_t fraction = 0;
  for (auto it = number.fraction.rbegin(); it != number.fraction.rend(); ++it) {
    fraction = (static_cast<std::uint64_t>(*it - '0') * factor + fraction) / 10;
  }
  if (whole * factor > kMaxBytes - fraction) return std::nullopt;
  return whole * factor + fraction;
}

// Appends value / unit as a decimal with no trailing zeros; unit is a power of ten.
void append_decimal(std::string& out, std::uint64_t value, std::uint64_t unit) {
  out += std::to_string(value / unit);
  std::uint64_t rest = value % unit;
  if (rest == 0) return;
  out += '.';
  for (std::uint64_t digit = unit / 10; rest != 0; digit /= 10) {
    out += static_cast<char>('0' + rest / digit);
    rest %= digit;
  }
}

}  // namespace

std::optional<Duration> parse_duration(std::string_view text, std::string* error) {
  if (text.empty()) {
    return fail<Duration>(error,
                          "an empty string is not a duration: " + std::string(kDurationHint));
  }
  if (text == "0") return Duration::zero();
  const std::string junk = in_quotes(text) + " is not a duration: " + std::string(kDurationHint);
  if (text.front() == '-') {
    return fail<Duration>(error, in_quotes(text) + " is not a duration: it must not be negative");
  }
  if (std::string_view number = text; take_decimal(number) && number.empty()) {
    return fail<Duration>(error, in_quotes(text) + " is not a duration: add a unit, e.g. " +
                                     in_quotes(std::string(text) + "s") + " or " +
                                     in_quotes(std::string(text) + "ms"));
  }
  std::uint64_t total = 0;
  std::string_view rest = text;
  while (!rest.empty()) {
    const std::optional<Decimal> number = take_decimal(rest);
    if (!number) return fail<Duration>(error, junk);
    std::size_t unit_length = 0;
    while (unit_length < rest.size() && !is_digit(rest[unit_length]) && rest[unit_length] != '.') {
      ++unit_length;
    }
    const std::string_view unit_name = rest.substr(0, unit_length);
    rest.remove_prefix(unit_length);
    const Unit* unit = find_unit(kDurationUnits, unit_name);
    if (unit == nullptr) return fail<Duration>(error, junk);
    const std::optional<std::uint64_t> nanoseconds = scale(*number, unit->factor);
    if (!nanoseconds || *nanoseconds > kMaxNanoseconds - total) {
      return fail<Duration>(
          error, in_quotes(text) + " is too long a duration: the maximum is about 292 years");
    }
    total += *nanoseconds;
  }
  return Duration(static_cast<Duration::rep>(total));
}

std::optional<Bytes> parse_bytes(std::string_view text, std::string* error) {
  if (text.empty()) {
    return fail<Bytes>(error, "an empty string is not a size: " + std::string(kSizeHint));
  }
  if (text.front() == '-') {
    return fail<Bytes>(error, in_quotes(text) + " is not a size: it must not be negative");
  }
  std::string_view rest = text;
  const std::optional<Decimal> number = take_decimal(rest);
  const Unit* unit = find_unit(kSizeUnits, rest.empty() ? "B" : rest);
  if (!number || unit == nullptr) {
    return fail<Bytes>(error, in_quotes(text) + " is not a size: " + std::string(kSizeHint));
  }
  if (unit->factor == 1 && !number->fraction.empty()) {
    return fail<Bytes>(error,
                       in_quotes(text) + " is not a size: a number of bytes must be a whole number");
  }
  const std::optional<std::uint64_t> bytes = scale(*number, unit->factor);
  if (!bytes) {
    return fail<Bytes>(error,
                       in_quotes(text) + " is too large a size: the maximum is just under 16EiB");
  }
  return Bytes{*bytes};
}

std::string format_duration(Duration d) {
  if (d == Duration::zero()) return "0s";
  std::string out;
  auto rest = static_cast<std::uint64_t>(d.count());
  if (d < Duration::zero()) {
    out = "-";
    rest = 0 - rest;  // two's complement magnitude; also right for the most negative value
  }
  if (rest < kSecond) {
    if (rest >= kMillisecond) {
      append_decimal(out, rest, kMillisecond);
      out += "ms";
    } else if (rest >= kMicrosecond) {
      append_decimal(out, rest, kMicrosecond);
      out += "us";
    } else {
      out += std::to_string(rest) + "ns";
    }
    return out;
  }
  for (const Unit& unit : {Unit{"d", kDay}, Unit{"h", kHour}, Unit{"m", kMinute}}) {
    if (rest >= unit.factor) {
      out += std::to_string(rest / unit.factor);
      out += unit.name;
      rest %= unit.factor;
    }
  }
  if (rest != 0) {
    append_decimal(out, rest, kSecond);
    out += 's';
  }
  return out;
}

}  // namespace lagwatch
