// Replication positions of both engines in one comparable form, and the byte distance
// between two of them.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lagwatch {

// A point in the primary's change stream.
// PostgreSQL: segment = 0, offset = the LSN as a 64-bit number.
// MySQL/MariaDB: segment = the binlog file's sequence number (mysql-bin.000042 → 42),
// offset = the byte offset in that file.
// Ordering is lexicographic, which is the stream order for both engines. `text` is the
// engine's own spelling ("0/3000060", "mysql-bin.000042:1234") and takes no part in ordering.
struct Position {
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;
  std::string text;

  friend bool operator==(const Position& a, const Position& b) {
    return a.segment == b.segment && a.offset == b.offset;
  }
  friend std::strong_ordering operator<=>(const Position& a, const Position& b) {
    if (auto c = a.segment <=> b.segment; c != 0) return c;
    return a.offset <=> b.offset;
  }
};

// One binlog file on a MySQL primary (SHOW BINARY LOGS): its sequence number and size.
struct Segment {
  std::uint64_t number = 0;
  std::uint64_t size = 0;
};

// Bytes from `from` up to `to` in the primary's stream, never negative (0 when `from` is at
// or past `to`). Across segments the sizes of the files in between come from `segments`;
// when one of them is missing (purged, or not listed) the distance is unknown: nullopt.
std::optional<std::uint64_t> bytes_between(const Position& from, const Position& to,
                                           const std::vector<Segment>& segments);

// PostgreSQL LSN text "16/B374D848" ↔ position.
std::optional<Position> parse_pg_lsn(const std::string& text);
std::string format_pg_lsn(std::uint64_t lsn);

// MySQL binlog coordinates ("mysql-bin.000042", 1234) → position; nullopt when the file
// name has no numeric extension.
std::optional<Position> mysql_binlog_position(const std::string& file, std::uint64_t offset);

}  // namespace lagwatch
