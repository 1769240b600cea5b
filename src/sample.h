// What one collection of one node returned: the collectors' output, the evaluator's input.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "clock.h"
#include "position.h"

namespace lagwatch {

enum class Role { unknown, primary, replica };
const char* role_name(Role role);

// Why a collection failed; each is a value of lagwatch_collection_errors_total{reason}.
enum class CollectionError { none, timeout, connect, auth, query };
const char* error_reason(CollectionError error);

// A replica's own view of one replication stream. PostgreSQL standbys have one, named "";
// MySQL replicas have one per channel ("" is the default channel).
struct ReplicationChannel {
  std::string name;
  std::optional<Position> replayed;  // replayed / executed position
  std::optional<Position> received;  // received / read position
  // MySQL/MariaDB: the GTIDs executed (gtid_slave_pos / gtid_executed), for read-your-writes.
  std::string gtid_position;
  // The engine's own lag figure: PostgreSQL now() - pg_last_xact_replay_timestamp(),
  // MySQL Seconds_Behind_Source. Absent when the engine reports NULL.
  std::optional<double> reported_lag_seconds;
  std::optional<bool> connected;  // WAL receiver streaming / IO thread running
  std::optional<bool> applying;   // replay not paused / SQL thread running
  std::optional<double> apply_delay_seconds;  // recovery_min_apply_delay / SQL_Delay
  std::string source;                          // where it replicates from, for the API
  std::int64_t last_io_errno = 0;
  std::int64_t last_sql_errno = 0;
  std::string last_error;  // for logs and the API only, never a label
};

// A primary's view of one connected standby (pg_stat_replication). Matched to a configured
// node through `application_name`.
struct StandbyStream {
  std::string application_name;
  std::string state;  // streaming, catchup, ...
  std::optional<Position> sent, write, flush, replay;
  std::optional<double> write_lag_seconds, flush_lag_seconds, replay_lag_seconds;
};

struct NodeSample {
  WallTime sampled_at{};             // exporter clock when the position queries were sent
  std::chrono::nanoseconds duration{};  // how long the collection took
  CollectionError error = CollectionError::none;
  std::string error_message;  // for logs and the API; never contains secrets
  Role role = Role::unknown;
  bool writable = false;  // a primary that accepts writes (not read-only)

  // Primary side.
  std::optional<Position> current_position;  // pg_current_wal_lsn() / SHOW MASTER STATUS
  std::vector<Segment> segments;             // MySQL: SHOW BINARY LOGS
  std::vector<StandbyStream> standbys;       // PostgreSQL: pg_stat_replication
  std::string gtid_position;                 // MySQL/MariaDB: the GTIDs this node has

  // Replica side.
  std::vector<ReplicationChannel> channels;
  // Heartbeat (when the cluster has one): the newest heartbeat visible here, on the clock
  // that wrote it, or why it could not be read.
  std::optional<WallTime> heartbeat_at;
  std::string heartbeat_error;

  bool up() const { return error == CollectionError::none; }
};

}  // namespace lagwatch
