// Position parsing and byte distances (see position.h).
#include "position.h"

#include <cctype>
#include <charconv>

namespace lagwatch {

std::optional<std::uint64_t> bytes_between(const Position& from, const Position& to,
                                           const std::vector<Segment>& segments) {
  if (from >= to) return 0;
  if (from.segment == to.segment) return to.offset - from.offset;
  auto size_of = [&](std::uint64_t number) -> std::optional<std::uint64_t> {
    for (const auto& s : segments)
      if (s.number == number) return s.size;
    return std::nullopt;
  };
  auto first = size_of(from.segment);
  if (!first) return std::nullopt;
  // The replica may have executed past what SHOW BINARY LOGS listed as the file's size if
  // the file grew between the two statements; the rest of that file is then 0 bytes.
  std::uint64_t total = *first > from.offset ? *first - from.offset : 0;
  for (std::uint64_t n = from.segment + 1; n < to.segment; ++n) {
    auto size = size_of(n);
    if (!size) return std::nullopt;
    total += *size;
  }
  return total + to.offset;
}

namespace {
bool parse_hex(std::string_view s, std::uint64_t& out) {
  if (s.empty() || s.size() > 8) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 16);
  return ec == std::errc() && ptr == s.data() + s.size();
}
}  // namespace

std::optional<Position> parse_pg_lsn(const std::string& text) {
  auto slash = text.find('/');
  if (slash == std::string::npos) return std::nullopt;
  std::uint64_t hi = 0, lo = 0;
  if (!parse_hex(std::string_view(text).substr(0, slash), hi) ||
      !parse_hex(std::string_view(text).substr(slash + 1), lo))
    return std::nullopt;
  return Position{0, (hi << 32) | lo, text};
}

std::string format_pg_lsn(std::uint64_t lsn) {
  char buf[32];
  auto hi = std::to_chars(buf, buf + 16, lsn >> 32, 16).ptr;
  *hi = '/';
  auto end = std::to_chars(hi + 1, buf + sizeof buf, lsn & 0xffffffffu, 16).ptr;
  std::string s(buf, end);
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::optional<Position> mysql_binlog_position(const std::string& file, std::uint64_t offset) {
  auto dot = file.rfind('.');
  if (dot == std::string::npos || dot + 1 == file.size()) return std::nullopt;
  std::uint64_t number = 0;
  const char* begin = file.data() + dot + 1;
  const char* end = file.data() + file.size();
  auto [ptr, ec] = std::from_chars(begin, end, number);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return Position{number, offset, file + ":" + std::to_string(offset)};
}

}  // namespace lagwatch
