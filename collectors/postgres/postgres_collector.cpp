// PostgreSQL collector (see postgres_collector.h).
#include "postgres/postgres_collector.h"

#include "heartbeat.h"

#include <libpq-fe.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <stdexcept>

namespace lagwatch {
namespace {

// One statement per cycle, prepared once per connection (kStatusStatement): parsing and
// planning it each time cost the server ten times what running it does, which matters when
// one server stands behind many node names. Two views are avoided for their cost:
// pg_settings builds every setting's row to find one (current_setting() reads one), and
// pg_stat_replication formats a row of pg_stat_activity for every backend of the server to
// keep the WAL senders' (pg_stat_get_activity(pid) formats just the sender's). Functions
// that fail on the other role are guarded by CASE.
// sampled_at is taken right before it is sent, so the primary's position is recorded no
// later than it was read: its samples never claim a position earlier than it held it.
constexpr const char* kStatusStatement = "lagwatch_status";
constexpr const char* kStatusQuery = R"sql(
SELECT pg_is_in_recovery() AS in_recovery,
  CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_lsn()::text END AS current_lsn,
  pg_last_wal_replay_lsn()::text AS replay_lsn,
  pg_last_wal_receive_lsn()::text AS receive_lsn,
  CASE WHEN pg_is_in_recovery() THEN
    extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::text END
    AS reported_lag_seconds,
  CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused()::text END AS replay_paused,
  (extract(epoch FROM current_setting('recovery_min_apply_delay')::interval) * 1000)::text
    AS apply_delay_ms,
  (SELECT status FROM pg_stat_wal_receiver LIMIT 1) AS receiver_status,
  (SELECT sender_host || ':' || sender_port FROM pg_stat_wal_receiver LIMIT 1) AS receiver_source,
  CASE WHEN NOT pg_is_in_recovery() THEN
    (SELECT coalesce(json_agg(json_build_object(
       'application_name', a.application_name, 'state', w.state,
       'sent_lsn', w.sent_lsn::text, 'write_lsn', w.write_lsn::text,
       'flush_lsn', w.flush_lsn::text, 'replay_lsn', w.replay_lsn::text,
       'write_lag', extract(epoch FROM w.write_lag),
       'flush_lag', extract(epoch FROM w.flush_lag),
       'replay_lag', extract(epoch FROM w.replay_lag))), '[]')::text
     FROM pg_stat_get_wal_senders() w, LATERAL pg_stat_get_activity(w.pid) a) END
    AS standbys_json,
  pg_has_role('pg_read_all_stats', 'USAGE')::text AS reads_all_stats,
  current_user AS monitoring_role
)sql";

std::optional<Position> lsn_field(const std::optional<std::string>& text, const char* what) {
  if (!text) return std::nullopt;
  auto p = parse_pg_lsn(*text);
  if (!p) throw std::runtime_error(std::string(what) + " is not an LSN: \"" + *text + "\"");
  return p;
}

std::optional<double> number_field(const std::optional<std::string>& text, const char* what) {
  if (!text) return std::nullopt;
  try {
    std::size_t used = 0;
    double v = std::stod(*text, &used);
    if (used != text->size() || !std::isfinite(v)) throw std::invalid_argument(what);
    return v;
  } catch (const std::exception&) {
    throw std::runtime_error(std::string(what) + " is not a number: \"" + *text + "\"");
  }
}

std::optional<bool> bool_field(const std::optional<std::string>& text, const char* what) {
  if (!text) return std::nullopt;
  if (*text == "t" || *text == "true") return true;
  if (*text == "f" || *text == "false") return false;
  throw std::runtime_error(std::string(what) + " is not a boolean: \"" + *text + "\"");
}

std::optional<Position> json_lsn(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  return lsn_field(j[key].get<std::string>(), key);
}

std::optional<double> json_number(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number()) return std::nullopt;
  return j[key].get<double>();
}

std::string quote_conninfo_value(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

CollectionError classify(const pqxx::sql_error& e) {
  const auto& state = e.sqlstate();
  if (state.rfind("28", 0) == 0 || state == "42501") return CollectionError::auth;
  if (state == "57014") return CollectionError::timeout;  // statement_timeout
  return CollectionError::query;
}

CollectionError classify_connect(const std::string& message) {
  for (const char* needle : {"password authentication failed", "no pg_hba.conf entry",
                             "authentication failed", "role \"", "fe_sendauth"})
    if (message.find(needle) != std::string::npos) return CollectionError::auth;
  if (message.find("timeout expired") != std::string::npos) return CollectionError::timeout;
  return CollectionError::connect;
}

std::string first_line(std::string s) {
  auto nl = s.find('\n');
  if (nl != std::string::npos) s.resize(nl);
  return s;
}

// What a connection attempt reports to the collector that may abort it. libpq's own
// connect_timeout is whole seconds and at least 2, and PQconnectdb() cannot be interrupted,
// so a server that accepts TCP but never answers (hung) or a peer that drops packets
// (partition) would hold the collecting worker well past the collection's timeout.
class ConnectWatch {
 public:
  virtual ~ConnectWatch() = default;
  // The attempt's current socket (it changes across addresses and TLS retries); false when
  // abort() was called and the attempt must give up.
  virtual bool publish_socket(int socket) = 0;
  virtual std::chrono::steady_clock::time_point connect_deadline() const = 0;
};

// pqxx 6 builds a connection through a policy constructed from the options string alone;
// the watch of the attempt on this thread reaches it here.
thread_local ConnectWatch* t_connect_watch = nullptr;

// Connects with PQconnectStart/PQconnectPoll, waiting in poll() on each socket libpq uses,
// until the watch's deadline or its abort.
class AbortableConnect final : public pqxx::connectionpolicy {
 public:
  explicit AbortableConnect(const std::string& options) : pqxx::connectionpolicy(options) {}

  handle do_startconnect(handle orig) override {
    if (orig != nullptr) return orig;
    ConnectWatch* watch = t_connect_watch;
    if (watch == nullptr) return normalconnect(orig);
    PGconn* conn = PQconnectStart(options().c_str());
    if (conn == nullptr) throw std::bad_alloc();
    auto give_up = [&](const std::string& message) {
      watch->publish_socket(-1);
      PQfinish(conn);
      throw pqxx::broken_connection(message);
    };
    if (PQstatus(conn) == CONNECTION_BAD) give_up(PQerrorMessage(conn));
    // As the libpq manual says: before the first PQconnectPoll(), wait as for WRITING.
    PostgresPollingStatusType state = PGRES_POLLING_WRITING;
    while (state != PGRES_POLLING_OK) {
      if (state == PGRES_POLLING_FAILED) give_up(PQerrorMessage(conn));
      int socket = PQsocket(conn);
      if (!watch->publish_socket(socket)) give_up("connection attempt aborted");
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          watch->connect_deadline() - std::chrono::steady_clock::now());
      // The words classify_connect() knows, as libpq's own connect_timeout says them.
      if (left.count() <= 0) give_up("timeout expired");
      pollfd p{socket, static_cast<short>(state == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0};
      int ready = ::poll(&p, 1, static_cast<int>(left.count()));
      if (ready < 0 && errno != EINTR) give_up(std::string("poll: ") + std::strerror(errno));
      if (ready <= 0) continue;  // the deadline or a signal: checked at the top
      state = PQconnectPoll(conn);
    }
    watch->publish_socket(-1);
    return conn;
  }
};

using AbortableConnection = pqxx::basic_connection_base<AbortableConnect>;

class PostgresCollector final : public Collector, ConnectWatch {
 public:
  explicit PostgresCollector(const CollectorContext& c)
      : conninfo_(postgres_connection_string(c.node->dsn,
                                             c.node->password ? c.node->password->value : "",
                                             c.timeout)),
        heartbeat_(c.cluster ? c.cluster->heartbeat : std::nullopt),
        cluster_(c.cluster ? c.cluster->name : ""),
        timeout_(c.timeout) {}

  NodeSample collect(const Clock& clock) override {
    NodeSample sample;
    auto started = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(mutex_);
      aborted_ = false;
    }
    try {
      if (!conn_ || !conn_->is_open()) connect();
      {
        std::lock_guard lock(mutex_);
        if (aborted_) throw Aborted{};
        socket_ = conn_->sock();
      }
      pqxx::nontransaction tx(*conn_);
      sample.sampled_at = clock.now();
      pqxx::result r = tx.exec_prepared(kStatusStatement);
      {
        std::lock_guard lock(mutex_);
        socket_ = -1;
        // An abort that came just as the answer arrived may have shut the socket down under
        // a connection that looks healthy: drop it rather than fail the next cycle.
        if (aborted_) throw Aborted{};
      }
      if (r.size() != 1) throw std::runtime_error("status query returned no row");
      const auto row = r[0];
      auto field = [&](const char* name) -> std::optional<std::string> {
        if (row[name].is_null()) return std::nullopt;
        return row[name].c_str();
      };
      PgStatusRow status{field("in_recovery"),  field("current_lsn"),
                         field("replay_lsn"),   field("receive_lsn"),
                         field("reported_lag_seconds"), field("replay_paused"),
                         field("apply_delay_ms"), field("receiver_status"),
                         field("receiver_source"), field("standbys_json"),
                         field("reads_all_stats"), field("monitoring_role")};
      fill_postgres_sample(status, sample);
      if (heartbeat_ && sample.role == Role::replica) read_heartbeat(tx, sample);
    } catch (const Aborted&) {
      fail(sample, CollectionError::timeout, "collection exceeded its timeout");
    } catch (const PgMissingPrivilege& e) {
      fail(sample, CollectionError::auth, e.what());
    } catch (const pqxx::sql_error& e) {
      fail(sample, was_aborted() ? CollectionError::timeout : classify(e), first_line(e.what()));
    } catch (const pqxx::broken_connection& e) {
      std::string message = first_line(e.what());
      fail(sample, was_aborted() ? CollectionError::timeout : classify_connect(message), message);
    } catch (const std::exception& e) {
      fail(sample, was_aborted() ? CollectionError::timeout : CollectionError::query,
           first_line(e.what()));
    }
    sample.duration = std::chrono::steady_clock::now() - started;
    return sample;
  }

  void abort() override {
    std::lock_guard lock(mutex_);
    aborted_ = true;
    // shutdown() wakes a thread blocked reading this socket without closing the descriptor,
    // which stays owned by libpq until the collecting thread drops the connection.
    if (socket_ >= 0) ::shutdown(socket_, SHUT_RDWR);
  }

 private:
  struct Aborted {};

  // A second statement, so a missing table or grant costs only the heartbeat figure.
  void read_heartbeat(pqxx::nontransaction& tx, NodeSample& sample) {
    {
      std::lock_guard lock(mutex_);
      socket_ = conn_->sock();
    }
    try {
      pqxx::result r = tx.exec(heartbeat_read_sql("postgres", *heartbeat_, cluster_));
      if (r.size() == 1 && !r[0][0].is_null()) {
        sample.heartbeat_at = parse_heartbeat(*heartbeat_, r[0][0].c_str());
        if (!sample.heartbeat_at) sample.heartbeat_error = "unreadable heartbeat value";
      } else {
        sample.heartbeat_error = "no heartbeat row";
      }
    } catch (const pqxx::sql_error& e) {
      sample.heartbeat_error = first_line(e.what());
    }
    std::lock_guard lock(mutex_);
    socket_ = -1;
    if (aborted_) throw Aborted{};
  }

  void connect() {
    conn_.reset();
    connect_deadline_ = std::chrono::steady_clock::now() + timeout_;
    t_connect_watch = this;
    try {
      conn_ = std::make_unique<AbortableConnection>(conninfo_);
      conn_->prepare(kStatusStatement, kStatusQuery);  // on the server at its first use
    } catch (...) {
      t_connect_watch = nullptr;
      throw;
    }
    t_connect_watch = nullptr;
  }

  bool publish_socket(int socket) override {
    std::lock_guard lock(mutex_);
    if (aborted_ && socket >= 0) return false;
    socket_ = socket;
    return true;
  }

  std::chrono::steady_clock::time_point connect_deadline() const override {
    return connect_deadline_;
  }

  void release_socket() {
    std::lock_guard lock(mutex_);
    socket_ = -1;
  }

  bool was_aborted() {
    std::lock_guard lock(mutex_);
    return aborted_;
  }

  void fail(NodeSample& sample, CollectionError error, std::string message) {
    release_socket();
    sample.error = error;
    sample.error_message = std::move(message);
    sample.role = Role::unknown;
    conn_.reset();  // reconnect next time: the connection's state is unknown
  }

  std::string conninfo_;
  std::optional<HeartbeatConfig> heartbeat_;
  std::string cluster_;
  std::chrono::nanoseconds timeout_;
  std::chrono::steady_clock::time_point connect_deadline_{};
  std::unique_ptr<AbortableConnection> conn_;
  std::mutex mutex_;  // guards socket_ and aborted_ against abort() from the scheduler
  int socket_ = -1;
  bool aborted_ = false;
};

}  // namespace

void fill_postgres_sample(const PgStatusRow& row, NodeSample& sample) {
  // Without it the server still answers, with NULL in every detail column of
  // pg_stat_wal_receiver and pg_stat_replication: read as data, a streaming standby would
  // look disconnected. Refuse the row rather than report made-up states.
  if (row.reads_all_stats && !*bool_field(row.reads_all_stats, "pg_has_role()")) {
    std::string role = row.monitoring_role.value_or("lagwatch");
    throw PgMissingPrivilege("role \"" + role +
                             "\" lacks pg_read_all_stats, so pg_stat_replication and "
                             "pg_stat_wal_receiver hide replication details from it: "
                             "GRANT pg_monitor TO \"" + role + "\"");
  }
  auto in_recovery = bool_field(row.in_recovery, "pg_is_in_recovery()");
  if (!in_recovery) throw std::runtime_error("pg_is_in_recovery() returned NULL");
  if (!*in_recovery) {
    sample.role = Role::primary;
    sample.writable = true;
    sample.current_position = lsn_field(row.current_lsn, "pg_current_wal_lsn()");
    if (!sample.current_position) throw std::runtime_error("pg_current_wal_lsn() returned NULL");
    if (row.standbys_json) {
      auto list = nlohmann::json::parse(*row.standbys_json);
      for (const auto& s : list) {
        StandbyStream standby;
        standby.application_name = s.value("application_name", "");
        if (s.contains("state") && s["state"].is_string()) standby.state = s["state"];
        standby.sent = json_lsn(s, "sent_lsn");
        standby.write = json_lsn(s, "write_lsn");
        standby.flush = json_lsn(s, "flush_lsn");
        standby.replay = json_lsn(s, "replay_lsn");
        standby.write_lag_seconds = json_number(s, "write_lag");
        standby.flush_lag_seconds = json_number(s, "flush_lag");
        standby.replay_lag_seconds = json_number(s, "replay_lag");
        sample.standbys.push_back(std::move(standby));
      }
    }
    return;
  }
  sample.role = Role::replica;
  ReplicationChannel channel;
  channel.replayed = lsn_field(row.replay_lsn, "pg_last_wal_replay_lsn()");
  channel.received = lsn_field(row.receive_lsn, "pg_last_wal_receive_lsn()");
  // NULL until the first transaction is replayed: unknown, not 0.
  channel.reported_lag_seconds = number_field(row.reported_lag_seconds, "replay lag");
  if (channel.reported_lag_seconds)
    channel.reported_lag_seconds = std::max(0.0, *channel.reported_lag_seconds);
  auto paused = bool_field(row.replay_paused, "pg_is_wal_replay_paused()");
  if (paused) channel.applying = !*paused;
  if (auto delay_ms = number_field(row.apply_delay_ms, "recovery_min_apply_delay"))
    channel.apply_delay_seconds = *delay_ms / 1000.0;
  // No row in pg_stat_wal_receiver means no receiver process: not streaming.
  channel.connected = row.receiver_status && *row.receiver_status == "streaming";
  if (row.receiver_source) channel.source = *row.receiver_source;
  sample.channels.push_back(std::move(channel));
}

std::string postgres_connection_string(const std::string& dsn, const std::string& password,
                                       std::chrono::nanoseconds timeout) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &error);
  if (options == nullptr) {
    std::string message = error ? first_line(error) : "cannot parse the dsn";
    PQfreemem(error);
    throw std::runtime_error(message);
  }
  std::string out;
  for (auto* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    std::string key = o->keyword;
    if (key == "password" || key == "connect_timeout" || key == "application_name") continue;
    out += key + "=" + quote_conninfo_value(o->val) + " ";
  }
  PQconninfoFree(options);
  // libpq waits forever by default, and rounds connect_timeout below 2 s up to 2 s.
  auto timeout_ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count();
  auto connect_s = std::max<long long>(2, (timeout_ms + 999) / 1000);
  out += "connect_timeout=" + std::to_string(connect_s) + " ";
  out += "application_name='lagwatch' ";
  // The server gives up on a statement before lagwatch would abort it.
  out += "options=" + quote_conninfo_value("-c statement_timeout=" + std::to_string(timeout_ms) +
                                           " -c lock_timeout=" + std::to_string(timeout_ms));
  if (!password.empty()) out += " password=" + quote_conninfo_value(password);
  return out;
}

std::unique_ptr<Collector> make_postgres_collector(const CollectorContext& context) {
  return std::make_unique<PostgresCollector>(context);
}

namespace {

class PostgresHeartbeatSink final : public HeartbeatSink {
 public:
  explicit PostgresHeartbeatSink(const CollectorContext& c)
      : conninfo_(postgres_connection_string(c.node->dsn,
                                             c.node->password ? c.node->password->value : "",
                                             c.timeout)),
        heartbeat_(*c.cluster->heartbeat),
        cluster_(c.cluster->name) {}

  void write(WallTime at) override {
    try {
      if (!conn_ || !conn_->is_open()) conn_ = std::make_unique<pqxx::connection>(conninfo_);
      pqxx::nontransaction tx(*conn_);
      tx.exec(heartbeat_write_sql("postgres", heartbeat_, cluster_, at));
    } catch (const std::exception& e) {
      conn_.reset();
      throw std::runtime_error(first_line(e.what()));
    }
  }

 private:
  std::string conninfo_;
  HeartbeatConfig heartbeat_;
  std::string cluster_;
  std::unique_ptr<pqxx::connection> conn_;
};

}  // namespace

std::unique_ptr<HeartbeatSink> make_postgres_heartbeat_sink(const CollectorContext& context) {
  return std::make_unique<PostgresHeartbeatSink>(context);
}

}  // namespace lagwatch
