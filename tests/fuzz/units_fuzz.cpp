// Fuzzes the parsers of what operators and clients write: durations, sizes, PostgreSQL LSNs,
// MySQL binlog coordinates and the read-your-writes tokens of min_position (MariaDB GTID
// lists, MySQL GTID sets). They answer bad text with nullopt, never an exception; so anything
// thrown, a crash, a sanitizer report or a broken round trip (checked below) is a finding.
//
// Input: "<text>" or "<text>\n<replica's position>"; the second line is the replayed position
// that min_position tokens are compared against, and the offset of a binlog coordinate.
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "mysql/mysql_collector.h"
#include "position.h"
#include "routing.h"
#include "units.h"

namespace {

[[noreturn]] void broken(const char* what, std::string_view text) {
  std::fprintf(stderr, "units_fuzz: %s for \"%.*s\"\n", what, static_cast<int>(text.size()),
               text.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lagwatch;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = input.find('\n');
  const std::string text = input.substr(0, newline);
  const std::string other = newline == std::string::npos ? "" : input.substr(newline + 1);

  std::string error;
  if (const auto d = parse_duration(text, &error)) {
    // format_duration promises a form parse_duration reads back exactly.
    const std::string formatted = format_duration(*d);
    const auto again = parse_duration(formatted);
    if (!again || *again != *d) broken("format_duration does not read back", text);
    // The driver's whole-second timeout: rounded up, never 0.
    if (mysql_timeout_seconds(*d) == 0) broken("mysql_timeout_seconds is 0", text);
  } else if (error.empty()) {
    broken("parse_duration refused without saying why", text);
  }
  error.clear();
  if (!parse_bytes(text, &error) && error.empty()) broken("parse_bytes refused silently", text);

  std::optional<Position> lsn = parse_pg_lsn(text);
  if (lsn) {
    const auto again = parse_pg_lsn(format_pg_lsn(lsn->offset));
    if (!again || again->offset != lsn->offset) broken("format_pg_lsn does not read back", text);
  }

  std::uint64_t offset = 0;
  std::from_chars(other.data(), other.data() + other.size(), offset);
  const std::optional<Position> binlog = mysql_binlog_position(text, offset);

  // min_position: the token against a replica whose replayed position is the second line.
  ChannelStatus replayed;
  replayed.position = parse_pg_lsn(other);
  replayed.gtid_position = other;
  for (const char* engine : {"postgres", "mysql"}) (void)position_reached(engine, text, replayed);

  // Distances between what was parsed; a segment list holding only the first file, as when
  // the files in between were purged.
  if (lsn && replayed.position) {
    const auto forward = bytes_between(*replayed.position, *lsn, {});
    if (!forward || (*replayed.position < *lsn && *forward != lsn->offset - replayed.position->offset))
      broken("bytes_between of two LSNs is not their difference", input);
  }
  if (binlog) {
    const Position start{binlog->segment / 2, offset / 2, ""};
    (void)bytes_between(start, *binlog, {{start.segment, offset}, {binlog->segment, offset}});
  }
  return 0;
}
