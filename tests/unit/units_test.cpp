// Pins down the duration and size syntax operators write in the config and API queries.
#include "units.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace lagwatch {
namespace {

using std::chrono::hours;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::seconds;

constexpr Duration kLongest = Duration(std::numeric_limits<Duration::rep>::max());

struct DurationCase {
  std::string text;
  Duration expected;
};

TEST(Units, ParseDurationReadsUnitsFractionsAndCompounds) {
  const DurationCase cases[] = {
      {"0", Duration::zero()},
      {"0s", Duration::zero()},
      {"1ns", nanoseconds(1)},
      {"100us", microseconds(100)},
      {"100\u00b5s", microseconds(100)},
      {"100\u03bcs", microseconds(100)},
      {"250ms", milliseconds(250)},
      {"0.5ms", microseconds(500)},
      {"1s", seconds(1)},
      {"1.5s", milliseconds(1500)},
      {"2m", minutes(2)},
      {"1h30m", minutes(90)},
      {"1h0m0s", hours(1)},
      {"1d", hours(24)},
      {"1.25d", hours(30)},
      {"007s", seconds(7)},
      {"1.0000000001s", seconds(1)},  // below a nanosecond: rounded down
      {"2562047h47m16.854775807s", kLongest},
  };
  for (const auto& c : cases) {
    std::string error;
    const std::optional<Duration> parsed = parse_duration(c.text, &error);
    ASSERT_TRUE(parsed.has_value()) << c.text << ": " << error;
    EXPECT_EQ(*parsed, c.expected) << c.text;
  }
}

struct RejectCase {
  std::string text;
  std::string error;
};

TEST(Units, ParseDurationRefusesJunkWithASentenceSayingWhatToWrite) {
  const RejectCase cases[] = {
      {"",
       R"(an empty string is not a duration: use a number with a unit, e.g. "250ms", "1s", "2m")"},
      {"5x", R"("5x" is not a duration: use a number with a unit, e.g. "250ms", "1s", "2m")"},
      {"5", R"("5" is not a duration: add a unit, e.g. "5s" or "5ms")"},
      {"1.5", R"("1.5" is not a duration: add a unit, e.g. "1.5s" or "1.5ms")"},
      {"-1s", R"("-1s" is not a duration: it must not be negative)"},
      {"1h30", R"("1h30" is not a duration: use a number with a unit, e.g. "250ms", "1s", "2m")"},
      {".5s", R"(".5s" is not a duration: use a number with a unit, e.g. "250ms", "1s", "2m")"},
      {"1.s", R"("1.s" is not a duration: use a number with a unit, e.g. "250ms", "1s", "2m")"},
      {"s", R"("s" is not a duration: use a number with a unit, e.g. "250ms", "1s", "2m")"},
      {" 1s", R"(" 1s" is not a duration: use a number with a unit, e.g. "250ms", "1s", "2m")"},
      {"1 s", R"("1 s" is not a duration: use a number with a unit, e.g. "250ms", "1s", "2m")"},
      {"1S", R"("1S" is not a duration: use a number with a unit, e.g. "250ms", "1s", "2m")"},
      {"1e3ms", R"("1e3ms" is not a duration: use a number with a unit, e.g. "250ms", "1s", "2m")"},
      {"+1s", R"("+1s" is not a duration: use a number with a unit, e.g. "250ms", "1s", "2m")"},
      {"2562047h47m16.854775808s",
       R"("2562047h47m16.854775808s" is too long a duration: the maximum is about 292 years)"},
      {"106752d", R"("106752d" is too long a duration: the maximum is about 292 years)"},
      {"99999999999999999999s",
       R"("99999999999999999999s" is too long a duration: the maximum is about 292 years)"},
  };
  for (const auto& c : cases) {
    std::string error;
    EXPECT_EQ(parse_duration(c.text, &error), std::nullopt) << c.text;
    EXPECT_EQ(error, c.error) << c.text;
  }
}

TEST(Units, ParseDurationWorksWithoutAnErrorSink) {
  EXPECT_EQ(parse_duration("5x"), std::nullopt);
  EXPECT_EQ(parse_duration("5s"), seconds(5));
}

TEST(Units, FormatDurationWritesLargestUnitsFirstAndNoZeroParts) {
  const DurationCase cases[] = {
      {"0s", Duration::zero()},
      {"1ns", nanoseconds(1)},
      {"999ns", nanoseconds(999)},
      {"1.5us", nanoseconds(1500)},
      {"100us", microseconds(100)},
      {"250ms", milliseconds(250)},
      {"1.000001ms", nanoseconds(1'000'001)},
      {"1s", seconds(1)},
      {"1.5s", milliseconds(1500)},
      {"1m30s", seconds(90)},
      {"2m0.5s", milliseconds(120'500)},
      {"1h30m", minutes(90)},
      {"1d", hours(24)},
      {"1d1s", hours(24) + seconds(1)},
      {"106751d23h47m16.854775807s", kLongest},
      {"-1.5s", milliseconds(-1500)},
  };
  for (const auto& c : cases) EXPECT_EQ(format_duration(c.expected), c.text);
}

TEST(Units, FormatDurationReadsBackExactly) {
  const Duration values[] = {nanoseconds(1), nanoseconds(123'456'789),     milliseconds(800),
                             seconds(59),    minutes(61) + nanoseconds(7), hours(49) + seconds(3),
                             kLongest};
  for (const Duration d : values) {
    EXPECT_EQ(parse_duration(format_duration(d)), d) << format_duration(d);
  }
}

struct BytesCase {
  std::string text;
  std::uint64_t expected;
};

TEST(Units, ParseBytesReadsBytesAndIecAndSiUnits) {
  const BytesCase cases[] = {
      {"0", 0},
      {"1024", 1024},
      {"512B", 512},
      {"10kB", 10'000},
      {"10KiB", 10ULL << 10},
      {"10MB", 10'000'000},
      {"10MiB", 10ULL << 20},
      {"1GB", 1'000'000'000},
      {"1.5GiB", 3ULL << 29},
      {"1TiB", 1ULL << 40},
      {"2PB", 2'000'000'000'000'000},
      {"15EiB", 15ULL << 60},
      {"1.1KiB", 1126},  // 1126.4 bytes, rounded down
      {"18446744073709551615", std::numeric_limits<std::uint64_t>::max()},
  };
  for (const auto& c : cases) {
    std::string error;
    const std::optional<Bytes> parsed = parse_bytes(c.text, &error);
    ASSERT_TRUE(parsed.has_value()) << c.text << ": " << error;
    EXPECT_EQ(parsed->value, c.expected) << c.text;
  }
}

TEST(Units, ParseBytesRefusesJunkNegativesFractionsOfBytesAndOverflow) {
  const std::string hint =
      R"(use a number of bytes or a number with a unit, e.g. "4096", "512KiB", "10MiB", "1.5GB")";
  const RejectCase cases[] = {
      {"", "an empty string is not a size: " + hint},
      {"10x", R"("10x" is not a size: )" + hint},
      {"10KB", R"("10KB" is not a size: )" + hint},
      {"10 MiB", R"("10 MiB" is not a size: )" + hint},
      {"MiB", R"("MiB" is not a size: )" + hint},
      {"-1MiB", R"("-1MiB" is not a size: it must not be negative)"},
      {"1.5", R"("1.5" is not a size: a number of bytes must be a whole number)"},
      {"1.5B", R"("1.5B" is not a size: a number of bytes must be a whole number)"},
      {"18446744073709551616", R"("18446744073709551616" is too large a size: the maximum is )"
                               "just under 16EiB"},
      {"16EiB", R"("16EiB" is too large a size: the maximum is just under 16EiB)"},
  };
  for (const auto& c : cases) {
    std::string error;
    EXPECT_EQ(parse_bytes(c.text, &error), std::nullopt) << c.text;
    EXPECT_EQ(error, c.error) << c.text;
  }
}

TEST(Units, ToSecondsKeepsFractions) {
  EXPECT_DOUBLE_EQ(to_seconds(milliseconds(1500)), 1.5);
  EXPECT_DOUBLE_EQ(to_seconds(Duration::zero()), 0.0);
}

}  // namespace
}  // namespace lagwatch
