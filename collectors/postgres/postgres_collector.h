// PostgreSQL collector: role, WAL positions, WAL receiver and pg_stat_replication, in one
// statement per cycle over one persistent connection.
#pragma once

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "collector.h"

namespace lagwatch {

std::unique_ptr<Collector> make_postgres_collector(const CollectorContext& context);

// Writes the heartbeat on a PostgreSQL primary over its own connection.
std::unique_ptr<HeartbeatSink> make_postgres_heartbeat_sink(const CollectorContext& context);

// The one status row, as text fields exactly as the server returned them (nullopt = NULL).
// Kept apart from the driver so the conversion is unit-tested without a server.
struct PgStatusRow {
  std::optional<std::string> in_recovery;         // "t" / "f"
  std::optional<std::string> current_lsn;         // primary only
  std::optional<std::string> replay_lsn;          // standby only
  std::optional<std::string> receive_lsn;         // standby only
  std::optional<std::string> reported_lag_seconds;  // now() - pg_last_xact_replay_timestamp()
  std::optional<std::string> replay_paused;       // "t" / "f"
  std::optional<std::string> apply_delay_ms;      // recovery_min_apply_delay in ms
  std::optional<std::string> receiver_status;     // pg_stat_wal_receiver.status
  std::optional<std::string> receiver_source;     // sender_host:sender_port
  std::optional<std::string> standbys_json;       // json_agg over pg_stat_replication
  std::optional<std::string> reads_all_stats;     // "t" / "f": pg_read_all_stats (pg_monitor)
  std::optional<std::string> monitoring_role;     // current_user
};

// The monitoring role may not see what the row needs (reads_all_stats is "f"): a permission
// problem (reason auth), not a malformed row.
struct PgMissingPrivilege : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Fills role, positions, channel and standbys of `sample` from the row. Throws
// PgMissingPrivilege when the role lacks pg_read_all_stats, and std::runtime_error naming the
// field when the row is not what this collector asked for.
void fill_postgres_sample(const PgStatusRow& row, NodeSample& sample);

// The libpq connection string: the configured DSN (URI or key=value) plus the password and
// lagwatch's own settings (timeouts, application_name). Throws std::runtime_error when libpq
// cannot parse the DSN.
std::string postgres_connection_string(const std::string& dsn, const std::string& password,
                                       std::chrono::nanoseconds timeout);

}  // namespace lagwatch
