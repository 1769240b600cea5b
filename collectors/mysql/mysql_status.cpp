// The MySQL collector's pure pieces: status rows → channels, role, binlog position and
// segments, when to list binlogs, error reasons (see mysql_collector.h). No driver calls here,
// so all of it is unit-tested.
#include "mysql/mysql_collector.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <stdexcept>
#include <string_view>

namespace lagwatch {
namespace {

constexpr std::uint64_t kEncryptionHeaderBytes = 512;  // Rpl_encryption_header_v1::HEADER_SIZE

// A column read under whichever of its two names the server used.
struct Column {
  std::string_view name;  // the name found, or the new name when neither is there
  bool present = false;
  std::optional<std::string> value;
};

// MySQL 8.0.22 renamed Master → Source and Slave → Replica; MariaDB and older MySQL use the
// old names. One lookup serves both, so there is one parser for every server.
Column column(const MysqlRow& row, std::string_view new_name, std::string_view old_name) {
  for (auto name : {new_name, old_name}) {
    if (name.empty()) continue;
    if (auto it = row.find(name); it != row.end()) return {name, true, it->second};
  }
  return {new_name, false, std::nullopt};
}

[[noreturn]] void not_a_number(const Column& c) {
  throw std::runtime_error(std::string(c.name) + " is not a number: \"" + *c.value + "\"");
}

template <typename T>
std::optional<T> number(const Column& c) {
  if (!c.value) return std::nullopt;
  const std::string& text = *c.value;
  T v{};
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) not_a_number(c);
  return v;
}

std::string text(const Column& c) { return c.value.value_or(""); }

std::optional<Position> binlog_position(const Column& file, const Column& offset) {
  auto at = number<std::uint64_t>(offset);
  // An empty file name is a channel that has not read or executed anything yet.
  if (!file.value || file.value->empty() || !at) return std::nullopt;
  return mysql_binlog_position(*file.value, *at);
}

// Executed_Gtid_Set is printed with a newline after each comma; one line reads better in the
// API and compares the same.
std::string one_line(std::string s) {
  std::erase_if(s, [](char c) { return c == '\n' || c == '\r'; });
  return s;
}

// "10.11.19-MariaDB-log" → {10, 11, 19}; missing parts are 0.
std::array<unsigned, 3> version_numbers(const std::string& version) {
  std::array<unsigned, 3> out{0, 0, 0};
  const char* p = version.data();
  const char* end = version.data() + version.size();
  for (auto& part : out) {
    auto [next, ec] = std::from_chars(p, end, part);
    if (ec != std::errc() || next == end || *next != '.') break;
    p = next + 1;
  }
  return out;
}

bool is_one_of(unsigned n, std::initializer_list<unsigned> list) {
  return std::find(list.begin(), list.end(), n) != list.end();
}

}  // namespace

bool is_mariadb_version(const std::string& version) {
  return version.find("MariaDB") != std::string::npos;
}

const char* mysql_replica_status_statement(const std::string& version) {
  auto v = version_numbers(version);
  if (is_mariadb_version(version)) {
    bool old = v[0] != 0 && v < std::array<unsigned, 3>{10, 5, 1};
    return old ? "SHOW ALL SLAVES STATUS" : "SHOW ALL REPLICAS STATUS";
  }
  bool old = v[0] != 0 && v < std::array<unsigned, 3>{8, 0, 22};
  return old ? "SHOW SLAVE STATUS" : "SHOW REPLICA STATUS";
}

ReplicationChannel parse_replica_status(const MysqlRow& row) {
  ReplicationChannel c;
  // MariaDB names its multi-source connections, MySQL its channels; "" is the default one.
  c.name = text(column(row, "Channel_Name", "Connection_name"));

  auto io = column(row, "Replica_IO_Running", "Slave_IO_Running");
  auto sql = column(row, "Replica_SQL_Running", "Slave_SQL_Running");
  if (!io.present || !sql.present)
    throw std::runtime_error(
        "the replica status row has no Replica_IO_Running/Slave_IO_Running "
        "or Replica_SQL_Running/Slave_SQL_Running column");
  // "Connecting" means the IO thread runs but has no stream: nothing arrives, so not connected.
  c.connected = io.value == "Yes";
  c.applying = sql.value == "Yes";

  c.replayed = binlog_position(column(row, "Relay_Source_Log_File", "Relay_Master_Log_File"),
                               column(row, "Exec_Source_Log_Pos", "Exec_Master_Log_Pos"));
  c.received = binlog_position(column(row, "Source_Log_File", "Master_Log_File"),
                               column(row, "Read_Source_Log_Pos", "Read_Master_Log_Pos"));

  // NULL while a thread is stopped or not connected: unknown, never 0.
  if (auto behind =
          number<std::int64_t>(column(row, "Seconds_Behind_Source", "Seconds_Behind_Master")))
    c.reported_lag_seconds = static_cast<double>(std::max<std::int64_t>(0, *behind));
  if (auto delay = number<std::int64_t>(column(row, "SQL_Delay", "")))
    c.apply_delay_seconds = static_cast<double>(*delay);

  auto host = text(column(row, "Source_Host", "Master_Host"));
  auto port = number<std::uint64_t>(column(row, "Source_Port", "Master_Port"));
  if (!host.empty()) {
    // Bracket IPv6 literals, as a configured node address would be written.
    c.source = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    if (port) c.source += ":" + std::to_string(*port);
  }

  c.last_io_errno = number<std::int64_t>(column(row, "Last_IO_Errno", "")).value_or(0);
  c.last_sql_errno = number<std::int64_t>(column(row, "Last_SQL_Errno", "")).value_or(0);
  auto io_error = text(column(row, "Last_IO_Error", ""));
  auto sql_error = text(column(row, "Last_SQL_Error", ""));
  if (!io_error.empty()) c.last_error = "IO thread: " + io_error;
  if (!sql_error.empty())
    c.last_error += (c.last_error.empty() ? "" : "; ") + std::string("SQL thread: ") + sql_error;

  // The GTIDs this replica has executed: MySQL per server, MariaDB's gtid_slave_pos.
  c.gtid_position = one_line(text(column(row, "Executed_Gtid_Set", "Gtid_Slave_Pos")));
  return c;
}

MysqlRole mysql_role(const std::vector<ReplicationChannel>& channels, bool read_only,
                     bool super_read_only) {
  const bool writable = !read_only && !super_read_only;
  if (channels.empty()) return {Role::primary, writable};
  // A replica promoted by STOP REPLICA + SET GLOBAL read_only = 0 usually keeps its channel
  // configuration (only RESET REPLICA ALL removes it). Calling it a replica would hide a second
  // writable primary, a split-brain; so a writable node that receives and applies nothing on
  // any channel counts as a primary. A channel whose IO thread is only "Connecting" receives
  // nothing and counts as stopped.
  const bool all_stopped = std::all_of(channels.begin(), channels.end(), [](const auto& c) {
    return !c.connected.value_or(false) && !c.applying.value_or(false);
  });
  if (all_stopped && writable) return {Role::primary, true};
  return {Role::replica, writable};
}

const char* mysql_binlog_status_statement(const std::string& version) {
  auto v = version_numbers(version);
  if (is_mariadb_version(version) || v < std::array<unsigned, 3>{8, 2, 0})
    return "SHOW MASTER STATUS";
  return "SHOW BINARY LOG STATUS";
}

std::optional<Position> parse_binlog_status(const std::vector<MysqlRow>& rows) {
  if (rows.empty()) return std::nullopt;
  auto file = column(rows.front(), "File", "");
  auto offset = column(rows.front(), "Position", "");
  if (!file.present || !offset.present)
    throw std::runtime_error("the binlog status row has no File or Position column");
  auto at = number<std::uint64_t>(offset);
  if (!file.value || !at)
    throw std::runtime_error("the binlog status row has a NULL File or Position");
  auto position = mysql_binlog_position(*file.value, *at);
  if (!position)
    throw std::runtime_error("File is not a binlog file name with a numeric extension: \"" +
                             *file.value + "\"");
  return position;
}

MysqlBinaryLogs parse_binary_logs(const std::vector<MysqlRow>& rows) {
  MysqlBinaryLogs out;
  for (const auto& row : rows) {
    auto name = column(row, "Log_name", "");
    auto size = number<std::uint64_t>(column(row, "File_size", ""));
    if (!name.value || !size) continue;
    // MySQL (8.0.14+) counts an encrypted file's 512-byte encryption header in File_size, also
    // the active file's (its position + 512), while every binlog position (SHOW BINARY LOG
    // STATUS, Exec_Source_Log_Pos) leaves it out.
    if (column(row, "Encrypted", "").value == "Yes")
      *size = *size > kEncryptionHeaderBytes ? *size - kEncryptionHeaderBytes : 0;
    auto position = mysql_binlog_position(*name.value, *size);
    if (!position) continue;
    out.segments.push_back({position->segment, *size});
    if (!out.current_position || *out.current_position < *position) out.current_position = position;
  }
  return out;
}

bool MysqlBinaryLogList::needs_listing(const Position& current, WallTime now) const {
  return listed_at_file_ != current.segment || now < listed_at_ || now - listed_at_ >= kMaxAge;
}

void MysqlBinaryLogList::update(const std::vector<MysqlRow>& rows, const Position& current,
                                WallTime now) {
  files_ = parse_binary_logs(rows).segments;
  listed_at_file_ = current.segment;
  listed_at_ = now;
}

void MysqlBinaryLogList::clear() {
  listed_at_file_.reset();
  files_.clear();
}

std::vector<Segment> MysqlBinaryLogList::segments(const Position& current) const {
  std::vector<Segment> out;
  out.reserve(files_.size() + 1);
  // Files listed after the current one exist only when the server rotated between the two
  // statements; they are left out, as a list read with the position would not have them.
  for (const auto& file : files_)
    if (file.number < current.segment) out.push_back(file);
  // The current file's size at the listing is stale by now; its end is the current position.
  out.push_back({current.segment, current.offset});
  return out;
}

CollectionError classify_mysql_error(unsigned error_number, bool connecting, bool aborted,
                                     bool read_timed_out) {
  if (aborted) return CollectionError::timeout;
  // Access denied (1044, 1045, 1142, 1143, 1227), host not allowed (1130), auth protocol or
  // plugin (1251, 2059, 2061: MySQL 8's caching_sha2_password without TLS or RSA key),
  // expired password (1820, 1862), locked account (MySQL 3118, MariaDB 4151), no password
  // (1698).
  if (is_one_of(error_number, {1044, 1045, 1130, 1142, 1143, 1227, 1251, 1698, 1820, 1862, 2059,
                               2061, 3118, 4151}))
    return CollectionError::auth;
  // A connection attempt that ran out of time met silence (a hung server, a partition):
  // the same reason as a statement that did.
  if (connecting) return read_timed_out ? CollectionError::timeout : CollectionError::connect;
  // Lost connection (2013, 2055), server gone (2006), network read/write errors (5013, 5014).
  if (is_one_of(error_number, {2006, 2013, 2055, 5013, 5014}))
    return read_timed_out ? CollectionError::timeout : CollectionError::connect;
  // Too many connections, server shutting down, host blocked, connection killed.
  if (is_one_of(error_number, {1040, 1053, 1129, 1927})) return CollectionError::connect;
  return CollectionError::query;
}

unsigned mysql_timeout_seconds(std::chrono::nanoseconds timeout) {
  auto ns = std::max<std::int64_t>(0, timeout.count());
  // Not (ns + 999'999'999) / 1e9: that overflows for a timeout within a second of the
  // largest the config accepts (about 292 years). Found by tests/fuzz/units_fuzz.
  auto seconds = ns / 1'000'000'000 + (ns % 1'000'000'000 != 0 ? 1 : 0);
  return static_cast<unsigned>(std::clamp<std::int64_t>(seconds, 1, 365 * 24 * 3600));
}

}  // namespace lagwatch
