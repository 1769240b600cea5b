// MySQL/MariaDB collector: role, binlog positions and replica channels, in three statements per
// cycle over one persistent connection (a primary's fourth, SHOW BINARY LOGS, only when its
// list of binlog files may have changed); plus the pure pieces it is built from.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "collector.h"

namespace lagwatch {

std::unique_ptr<Collector> make_mysql_collector(const CollectorContext& context);

// Writes the heartbeat on a MySQL/MariaDB primary over its own connection.
std::unique_ptr<HeartbeatSink> make_mysql_heartbeat_sink(const CollectorContext& context);

// ---- Connection settings -------------------------------------------------------------------

// The mysql client's --ssl-mode values: TLS never, when offered (the default), always, always
// with the certificate verified. MariaDB Connector/C verifies the certificate's chain and host
// name together, so verify_ca is as strict as verify_identity here.
enum class MysqlSslMode { disabled, preferred, required, verify_ca, verify_identity };

// What a mysql:// or mariadb:// DSN says:
//   mysql://user@host:port/database?ssl-mode=VERIFY_CA&ssl-ca=/etc/ca.pem
// Query parameters: ssl-mode, ssl-ca, ssl-cert, ssl-key, ssl-capath.
struct MysqlConnectOptions {
  std::string host;
  unsigned port = 3306;
  std::string user;
  std::string database;                             // empty: none
  MysqlSslMode ssl_mode = MysqlSslMode::preferred;  // verify_ca when only ssl-ca/ssl-capath given
  std::string ssl_ca, ssl_cert, ssl_key, ssl_capath;
};

// Parses the DSN. Throws std::invalid_argument saying what is wrong for anything else: another
// scheme, a password, no host, a bad port, a database path with "/", an unknown or repeated
// query parameter, an unknown ssl-mode, certificate files with ssl-mode=DISABLED.
MysqlConnectOptions parse_mysql_dsn(const std::string& dsn);

// MYSQL_OPT_{CONNECT,READ,WRITE}_TIMEOUT for a collection timeout: the driver takes whole
// seconds, so round up (never cut a collection short) and never 0 (which means "no timeout").
unsigned mysql_timeout_seconds(std::chrono::nanoseconds timeout);

// ---- Rows -> sample ------------------------------------------------------------------------

// One row as the server returned it: column name → text (nullopt = NULL).
using MysqlRow = std::map<std::string, std::optional<std::string>, std::less<>>;

// Whether @@version (or the handshake's server version) is MariaDB's.
bool is_mariadb_version(const std::string& version);

// The replica-status statement a server of this @@version understands:
// MariaDB >= 10.5.1 "SHOW ALL REPLICAS STATUS", older "SHOW ALL SLAVES STATUS";
// MySQL >= 8.0.22 "SHOW REPLICA STATUS", older "SHOW SLAVE STATUS". An unparsable version
// gets the new spelling; the collector falls back to the old one on a syntax error.
const char* mysql_replica_status_statement(const std::string& version);

// One row of SHOW REPLICA STATUS / SHOW SLAVE STATUS / SHOW ALL SLAVES STATUS → channel.
// Reads both the Source/Replica (MySQL >= 8.0.22) and the Master/Slave column names.
// Throws std::runtime_error naming the column when a number is not a number or the thread
// state columns are missing: a malformed row is an error, never a zero.
ReplicationChannel parse_replica_status(const MysqlRow& row);

struct MysqlRole {
  Role role = Role::unknown;
  bool writable = false;
};

// The node's role from its channels and read-only flags (super_read_only: MySQL only).
MysqlRole mysql_role(const std::vector<ReplicationChannel>& channels, bool read_only,
                     bool super_read_only);

// ---- A primary's binlog ---------------------------------------------------------------------

// The statement that reads a primary's current binlog file and position on a server of this
// @@version: MySQL >= 8.2.0 "SHOW BINARY LOG STATUS" (8.2 deprecated SHOW MASTER STATUS, 8.4
// removed it); MariaDB, older MySQL and an unparsable version "SHOW MASTER STATUS" (MariaDB's
// only spelling before 10.5.2, an alias of SHOW BINLOG STATUS since). The collector switches
// to the other spelling, for as long as the connection lasts, when the server answers one
// with a syntax error (a MySQL 8.4 behind a proxy that rewrites the version).
const char* mysql_binlog_status_statement(const std::string& version);

// The rows of SHOW MASTER STATUS / SHOW BINARY LOG STATUS / SHOW BINLOG STATUS → the current
// position. Columns File, Position, Binlog_Do_DB, Binlog_Ignore_DB, and on MySQL
// Executed_Gtid_Set; only File and Position are read. No row means binary logging is off:
// nullopt. Throws std::runtime_error when Position is not a number or File has no numeric
// extension: a position lagwatch cannot order is an error, never a guess.
std::optional<Position> parse_binlog_status(const std::vector<MysqlRow>& rows);

// SHOW BINARY LOGS on a primary: every file as a segment, and the newest file's end as the
// current position (nullopt when no file name parses).
struct MysqlBinaryLogs {
  std::vector<Segment> segments;
  std::optional<Position> current_position;
};

// Rows with Log_name, File_size and (MySQL 8.0.14+) Encrypted. Sizes are logical: an encrypted
// file's 512-byte header is not counted, as binlog positions do not count it. Names without a
// numeric extension are skipped; a size that is not a number throws std::runtime_error.
MysqlBinaryLogs parse_binary_logs(const std::vector<MysqlRow>& rows);

// A primary's binlog files as its last SHOW BINARY LOGS listed them. The sizes are what lag
// across files needs, and a closed file's size never changes, so the list is read again only
// when it may be out of date; SHOW BINARY LOGS is not cheap on a primary that keeps thousands
// of files (the server reads its index and the size of every file, holding the index lock).
class MysqlBinaryLogList {
 public:
  // PURGE BINARY LOGS by hand removes files without a rotation: a list is re-read at this
  // age, so the segments match the server's own list again within a minute.
  static constexpr std::chrono::seconds kMaxAge{60};

  // Whether SHOW BINARY LOGS must run in a cycle that read `current` (from SHOW MASTER STATUS)
  // at `now`: nothing listed yet (first cycle, a new connection, the node has just become a
  // primary), the current file is not the one current at the listing (a rotation, RESET
  // MASTER), or the list is kMaxAge old (or from a future the wall clock has stepped back from).
  bool needs_listing(const Position& current, WallTime now) const;

  // Keeps the files of SHOW BINARY LOGS rows (see parse_binary_logs) read in a cycle whose
  // current position was `current`, at `now`. Throws as parse_binary_logs does, keeping the
  // previous list.
  void update(const std::vector<MysqlRow>& rows, const Position& current, WallTime now);

  // Forgets the list, so the next needs_listing() is true.
  void clear();

  // The sample's segments for the current position: every listed file before the current one
  // with its size, then the current file ending at `current` — what SHOW BINARY LOGS would
  // list now, so bytes_between() measures as it would from that list.
  std::vector<Segment> segments(const Position& current) const;

 private:
  std::optional<std::uint64_t> listed_at_file_;  // the current file's number at the listing
  WallTime listed_at_{};
  std::vector<Segment> files_;  // in the server's order (oldest first)
};

// What a client or server error number means for lagwatch_collection_errors_total{reason}.
// `connecting`: the error came from mysql_real_connect(). `aborted`: abort() was called
// during this collection. `read_timed_out`: the statement ran into MYSQL_OPT_READ_TIMEOUT, or
// the connection attempt into the collection's timeout.
CollectionError classify_mysql_error(unsigned error_number, bool connecting, bool aborted,
                                     bool read_timed_out);

}  // namespace lagwatch
