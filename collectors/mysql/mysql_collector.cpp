// MySQL/MariaDB collector: the DSN, the connection and the statements of a cycle (see
// mysql_collector.h; the row conversions are in mysql_status.cpp).
#include "mysql/mysql_collector.h"

#include "heartbeat.h"

#include <curl/curl.h>
#include <mysql.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string_view>

namespace lagwatch {
namespace {

constexpr unsigned kUnknownSystemVariable = 1193;  // ER_UNKNOWN_SYSTEM_VARIABLE
constexpr unsigned kParseError = 1064;             // ER_PARSE_ERROR
constexpr unsigned kNoBinaryLogging = 1381;        // ER_NO_BINARY_LOGGING
constexpr unsigned kTlsError = 2026;               // CR_SSL_CONNECTION_ERROR

constexpr const char* kShowMasterStatus = "SHOW MASTER STATUS";
constexpr const char* kShowBinaryLogStatus = "SHOW BINARY LOG STATUS";

// Statement 1. The flavour decides the variable names: MariaDB has no super_read_only and
// calls its GTID position gtid_current_pos.
constexpr const char* kMysqlVariables =
    "SELECT @@global.read_only AS read_only, @@version AS version, @@server_id AS server_id, "
    "@@global.gtid_executed AS gtid_position, @@global.super_read_only AS super_read_only";
constexpr const char* kMariadbVariables =
    "SELECT @@global.read_only AS read_only, @@version AS version, @@server_id AS server_id, "
    "@@global.gtid_current_pos AS gtid_position";

// ---- DSN -----------------------------------------------------------------------------------

struct UrlHandle {
  CURLU* url = curl_url();
  UrlHandle() = default;
  UrlHandle(const UrlHandle&) = delete;
  UrlHandle& operator=(const UrlHandle&) = delete;
  ~UrlHandle() { curl_url_cleanup(url); }

  std::optional<std::string> part(CURLUPart what, unsigned flags = 0) const {
    char* value = nullptr;
    if (curl_url_get(url, what, &value, flags) != CURLUE_OK || value == nullptr)
      return std::nullopt;
    std::string copy(value);
    curl_free(value);
    return copy;
  }
};

std::string url_decode(std::string_view text) {
  int length = 0;
  char* decoded = curl_easy_unescape(nullptr, text.data(), static_cast<int>(text.size()), &length);
  if (decoded == nullptr) throw std::bad_alloc();
  std::string copy(decoded, static_cast<std::size_t>(length));
  curl_free(decoded);
  return copy;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

MysqlSslMode parse_ssl_mode(const std::string& value) {
  std::string v = lower(value);
  std::replace(v.begin(), v.end(), '-', '_');
  if (v == "disabled") return MysqlSslMode::disabled;
  if (v == "preferred") return MysqlSslMode::preferred;
  if (v == "required") return MysqlSslMode::required;
  if (v == "verify_ca") return MysqlSslMode::verify_ca;
  if (v == "verify_identity") return MysqlSslMode::verify_identity;
  throw std::invalid_argument("unknown ssl-mode \"" + value +
                              "\" (one of DISABLED, PREFERRED, REQUIRED, VERIFY_CA, "
                              "VERIFY_IDENTITY)");
}

// ---- Connection ----------------------------------------------------------------------------

std::string first_line(std::string s) {
  auto nl = s.find('\n');
  if (nl != std::string::npos) s.resize(nl);
  return s;
}

// A client or server error, with what classify_mysql_error() needs to know about it.
struct MysqlError {
  unsigned number = 0;
  std::string message;
  bool connecting = false;
  bool read_timed_out = false;
};

void set_option(MYSQL* conn, mysql_option option, const void* value, const char* what) {
  if (mysql_options(conn, option, value) != 0)
    throw MysqlError{0, std::string("the client library refused option ") + what, true, false};
}

void set_tls_options(MYSQL* conn, const MysqlConnectOptions& o) {
  auto file = [&](mysql_option option, const std::string& path, const char* what) {
    if (!path.empty()) set_option(conn, option, path.c_str(), what);
  };
  file(MYSQL_OPT_SSL_CA, o.ssl_ca, "ssl-ca");
  file(MYSQL_OPT_SSL_CAPATH, o.ssl_capath, "ssl-capath");
  file(MYSQL_OPT_SSL_CERT, o.ssl_cert, "ssl-cert");
  file(MYSQL_OPT_SSL_KEY, o.ssl_key, "ssl-key");
  // Connector/C 3.3, tried against servers with and without TLS: "enforce" without "verify"
  // uses TLS when the server offers it and silently goes on in plain text when it does not,
  // which is PREFERRED; REQUIRED is therefore checked after connecting.
  // "verify" checks the chain and the host name together and refuses a server without TLS.
  my_bool enforce = o.ssl_mode != MysqlSslMode::disabled;
  my_bool verify =
      o.ssl_mode == MysqlSslMode::verify_ca || o.ssl_mode == MysqlSslMode::verify_identity;
  set_option(conn, MYSQL_OPT_SSL_ENFORCE, &enforce, "MYSQL_OPT_SSL_ENFORCE");
  set_option(conn, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify, "MYSQL_OPT_SSL_VERIFY_SERVER_CERT");
}

void init_client_library() {
  // mysql_init() would do this on first use, but not thread-safely: do it once, up front.
  static std::once_flag once;
  std::call_once(once, [] {
    if (mysql_library_init(0, nullptr, nullptr) != 0)
      throw std::runtime_error("cannot initialise the MariaDB client library");
  });
}

bool flag(const std::optional<std::string>& value, const char* what) {
  if (value == "1" || value == "ON") return true;
  if (value == "0" || value == "OFF") return false;
  throw std::runtime_error(std::string(what) + " is not 0 or 1: \"" + value.value_or("NULL") +
                           "\"");
}

std::string one_line(std::string s) {
  std::erase_if(s, [](char c) { return c == '\n' || c == '\r'; });
  return s;
}

class MysqlCollector final : public Collector {
 public:
  explicit MysqlCollector(const CollectorContext& c)
      : options_(parse_mysql_dsn(c.node->dsn)),
        password_(c.node->password ? std::optional(c.node->password->value) : std::nullopt),
        timeout_seconds_(mysql_timeout_seconds(c.timeout)),
        heartbeat_(c.cluster ? c.cluster->heartbeat : std::nullopt),
        cluster_(c.cluster ? c.cluster->name : ""),
        timeout_(c.timeout) {
    init_client_library();
  }

  ~MysqlCollector() override { close(); }

  // Heartbeat writes reuse the connection code; they run on their own MysqlCollector object
  // (one connection), never on the one that collects.
  void write_heartbeat(WallTime at) {
    try {
      if (conn_ == nullptr) connect();
      run("heartbeat write", heartbeat_write_sql("mysql", *heartbeat_, cluster_, at));
    } catch (const MysqlError& e) {
      close();
      throw std::runtime_error(first_line(e.message));
    }
  }

  NodeSample collect(const Clock& clock) override {
    NodeSample sample;
    auto started = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(mutex_);
      aborted_ = false;
    }
    try {
      if (conn_ == nullptr) connect();
      {
        std::lock_guard lock(mutex_);
        if (aborted_) throw Aborted{};
        socket_ = static_cast<int>(mysql_get_socket(conn_));
      }
      // Taken before the first statement: the primary's position is recorded no later than
      // it was read: the primary's samples never claim a position earlier than it held it.
      sample.sampled_at = clock.now();
      collect_statements(sample);
      {
        std::lock_guard lock(mutex_);
        socket_ = -1;
        // abort() came after the last answer arrived: the caller has given up on this
        // collection, and the socket may be shut down under a connection that looks fine.
        if (aborted_) throw Aborted{};
      }
    } catch (const Aborted&) {
      fail(sample, CollectionError::timeout, "collection exceeded its timeout");
    } catch (const MysqlError& e) {
      fail(sample, classify_mysql_error(e.number, e.connecting, was_aborted(), e.read_timed_out),
           first_line(e.message));
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
    // shutdown() wakes a thread blocked on this socket without closing the descriptor, which
    // stays owned by the client library until the collecting thread closes the connection.
    if (socket_ >= 0) ::shutdown(socket_, SHUT_RDWR);
  }

 private:
  struct Aborted {};

  void collect_statements(NodeSample& sample) {
    // 1. Read-only flags, version and GTIDs.
    auto variables = run("SELECT @@read_only, ...", mariadb_ ? kMariadbVariables : kMysqlVariables);
    if (variables.size() != 1) throw std::runtime_error("SELECT @@read_only returned no row");
    const auto& v = variables[0];
    auto value = [&](const char* column) -> const std::optional<std::string>& {
      auto it = v.find(column);
      if (it == v.end()) throw std::runtime_error(std::string("no column ") + column);
      return it->second;
    };
    bool read_only = flag(value("read_only"), "@@read_only");
    bool super_read_only = !mariadb_ && flag(value("super_read_only"), "@@super_read_only");
    std::string version = value("version").value_or("");
    sample.gtid_position = one_line(value("gtid_position").value_or(""));

    // 2. Replica channels, in whichever spelling this server understands.
    if (replica_status_.empty()) replica_status_ = mysql_replica_status_statement(version);
    std::vector<MysqlRow> status;
    try {
      status = run(replica_status_, replica_status_);
    } catch (const MysqlError& e) {
      std::string old = mariadb_ ? "SHOW ALL SLAVES STATUS" : "SHOW SLAVE STATUS";
      if (e.number != kParseError || replica_status_ == old) throw;
      replica_status_ = old;
      status = run(replica_status_, replica_status_);
    }
    std::vector<ReplicationChannel> channels;
    for (const auto& row : status) {
      channels.push_back(parse_replica_status(row));
      if (channels.back().gtid_position.empty())
        channels.back().gtid_position = sample.gtid_position;
    }

    auto role = mysql_role(channels, read_only, super_read_only);
    sample.role = role.role;
    sample.writable = role.writable;
    if (role.role == Role::replica) {
      binary_logs_.clear();  // a list from before a demotion must not outlive it
      sample.channels = std::move(channels);
      // 3. The heartbeat, when the cluster has one; a missing table or grant costs only it.
      if (heartbeat_) {
        try {
          auto rows = run("heartbeat read", heartbeat_read_sql("mysql", *heartbeat_, cluster_));
          const auto* value = rows.size() == 1 && !rows[0].empty() ? &rows[0].begin()->second : nullptr;
          if (value != nullptr && *value) {
            sample.heartbeat_at = parse_heartbeat(*heartbeat_, **value);
            if (!sample.heartbeat_at) sample.heartbeat_error = "unreadable heartbeat value";
          } else {
            sample.heartbeat_error = "no heartbeat row";
          }
        } catch (const MysqlError& e) {
          if (e.number == 2013 || e.number == 2006 || e.connecting) throw;  // the connection
          sample.heartbeat_error = first_line(e.message);
        }
      }
      return;
    }

    // 3. A primary's current binlog position, every cycle: SHOW MASTER STATUS (SHOW BINARY LOG
    // STATUS on MySQL 8.2+; 8.4 removed the old name). 4. SHOW BINARY LOGS, for the file sizes
    // that lag across files needs, only when they may have changed (MysqlBinaryLogList): a
    // closed file never changes, so after the first cycle only a rotation (a new current file)
    // or a list a minute old calls for it. A primary's cycle is thus three statements, four
    // after a rotation, rather than a listing of every binlog file (thousands on a busy
    // primary, each one's size read under the index lock) every second.
    try {
      auto current = parse_binlog_status(run_binlog_status(version));
      if (!current) {  // binary logging is off (an empty answer)
        binary_logs_.clear();
        return;
      }
      if (binary_logs_.needs_listing(*current, sample.sampled_at))
        binary_logs_.update(run("SHOW BINARY LOGS", "SHOW BINARY LOGS"), *current,
                            sample.sampled_at);
      sample.segments = binary_logs_.segments(*current);
      sample.current_position = std::move(current);
    } catch (const MysqlError& e) {
      // A primary without log_bin has no position and no replicas to measure; it is still a
      // (writable) primary, which is what split-brain detection needs.
      if (e.number != kNoBinaryLogging) throw;
      binary_logs_.clear();
    }
  }

  // SHOW MASTER STATUS or SHOW BINARY LOG STATUS, whichever this connection's server
  // understands: the version's choice first; after a syntax error the other one, from then on.
  std::vector<MysqlRow> run_binlog_status(const std::string& version) {
    if (binlog_status_.empty()) binlog_status_ = mysql_binlog_status_statement(version);
    try {
      return run(binlog_status_, binlog_status_);
    } catch (const MysqlError& e) {
      if (e.number != kParseError) throw;
      // Tried once per cycle: when both fail, the cycle fails and the reconnect starts over.
      binlog_status_ =
          binlog_status_ == kShowMasterStatus ? kShowBinaryLogStatus : kShowMasterStatus;
      return run(binlog_status_, binlog_status_);
    }
  }

  void connect() {
    close();
    conn_ = mysql_init(nullptr);
    if (conn_ == nullptr) throw std::bad_alloc();
    set_option(conn_, MYSQL_OPT_CONNECT_TIMEOUT, &timeout_seconds_, "MYSQL_OPT_CONNECT_TIMEOUT");
    set_option(conn_, MYSQL_OPT_READ_TIMEOUT, &timeout_seconds_, "MYSQL_OPT_READ_TIMEOUT");
    set_option(conn_, MYSQL_OPT_WRITE_TIMEOUT, &timeout_seconds_, "MYSQL_OPT_WRITE_TIMEOUT");
    // A silent reconnect would hide failures and lose per-connection state; collect() decides.
    my_bool reconnect = 0;
    set_option(conn_, MYSQL_OPT_RECONNECT, &reconnect, "MYSQL_OPT_RECONNECT");
    // The DSN names host and port: "localhost" must not silently mean the local Unix socket.
    unsigned protocol = MYSQL_PROTOCOL_TCP;
    set_option(conn_, MYSQL_OPT_PROTOCOL, &protocol, "MYSQL_OPT_PROTOCOL");
    mysql_optionsv(conn_, MYSQL_OPT_CONNECT_ATTR_ADD, "program_name", "lagwatch");
    set_tls_options(conn_, options_);
    if (!connect_abortably()) {
      MysqlError e{mysql_errno(conn_), where() + mysql_error(conn_), true, false};
      if (e.number == kTlsError && e.message.find("certificate") != std::string::npos &&
          (options_.ssl_mode == MysqlSslMode::verify_ca ||
           options_.ssl_mode == MysqlSslMode::verify_identity))
        e.message += " (the certificate must chain to ssl-ca/ssl-capath and name host \"" +
                     options_.host + "\": the client library checks both for VERIFY_CA too)";
      close();
      throw e;
    }
    if (options_.ssl_mode == MysqlSslMode::required && mysql_get_ssl_cipher(conn_) == nullptr) {
      close();
      throw MysqlError{kTlsError, where() + "ssl-mode=REQUIRED, but the server does not offer TLS",
                       true, false};
    }
    replica_status_.clear();
    binlog_status_.clear();
    binary_logs_.clear();  // the server behind the address may have changed
    std::string server = mysql_get_server_info(conn_);
    mariadb_ = flavour_hint_.value_or(is_mariadb_version(server));
  }

  // mysql_real_connect() in the client library's non-blocking mode, waiting in poll() on the
  // socket it uses, published so that abort() can shut it down mid-handshake, and for no
  // longer than the collection's timeout: MYSQL_OPT_CONNECT_TIMEOUT is whole seconds, and a
  // server that accepts TCP but never greets (hung) or a peer that drops packets (partition)
  // would hold the worker well past the timeout. Blocking calls work on the connection after
  // it. false when the server or the network said no (mysql_errno() says why); throws
  // MysqlError when aborted or out of time.
  bool connect_abortably() {
    set_option(conn_, MYSQL_OPT_NONBLOCK, nullptr, "MYSQL_OPT_NONBLOCK");
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    MYSQL* connected = nullptr;
    int status = mysql_real_connect_start(
        &connected, conn_, options_.host.c_str(),
        options_.user.empty() ? nullptr : options_.user.c_str(),
        password_ ? password_->c_str() : nullptr,
        options_.database.empty() ? nullptr : options_.database.c_str(), options_.port, nullptr,
        0);
    while (status != 0) {
      int socket = static_cast<int>(mysql_get_socket(conn_));
      {
        std::lock_guard lock(mutex_);
        if (aborted_) {  // abort() has shut the published socket down, or came before it
          socket_ = -1;
          throw MysqlError{0, where() + "connection attempt aborted", true, false};
        }
        socket_ = socket;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0) {
        // Shut down first, so that closing the half-open connection sends nothing that waits.
        if (socket >= 0) ::shutdown(socket, SHUT_RDWR);
        release_socket();
        throw MysqlError{0, where() + "no answer within the timeout of " +
                                std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                   timeout_).count()) + "ms",
                         true, true};
      }
      // The library's own timeout (MYSQL_WAIT_TIMEOUT) is not handed back to it: doing so
      // failed the attempt as "Can't connect ... (115)" (EINPROGRESS) far sooner than the
      // connect timeout it was given, on a network merely slow; the collection's deadline
      // is the one that counts.
      pollfd p{socket, 0, 0};
      if (status & MYSQL_WAIT_READ) p.events |= POLLIN;
      if (status & MYSQL_WAIT_WRITE) p.events |= POLLOUT;
      if (status & MYSQL_WAIT_EXCEPT) p.events |= POLLPRI;
      int ready = ::poll(&p, 1, static_cast<int>(left));
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) {
        release_socket();
        throw MysqlError{0, where() + "poll: " + std::strerror(errno), true, false};
      }
      if (ready == 0) continue;  // the deadline: checked at the top
      // An error or hang-up: let the library find it by reading or writing as it asked.
      const bool broken = p.revents & (POLLERR | POLLHUP | POLLNVAL);
      int happened = 0;
      if (p.revents & POLLIN || broken) happened |= status & MYSQL_WAIT_READ;
      if (p.revents & POLLOUT || broken) happened |= status & MYSQL_WAIT_WRITE;
      if (p.revents & POLLPRI) happened |= status & MYSQL_WAIT_EXCEPT;
      status = mysql_real_connect_cont(&connected, conn_, happened);
    }
    release_socket();
    return connected != nullptr;
  }

  // Runs one statement and returns its rows by column name. `label` names it in errors.
  std::vector<MysqlRow> run(const std::string& label, const std::string& sql) {
    auto started = std::chrono::steady_clock::now();
    if (mysql_real_query(conn_, sql.data(), sql.size()) != 0) throw error(label, started);
    MYSQL_RES* result = mysql_store_result(conn_);
    if (result == nullptr) {
      if (mysql_errno(conn_) != 0) throw error(label, started);
      return {};
    }
    std::vector<MysqlRow> rows;
    unsigned columns = mysql_num_fields(result);
    MYSQL_FIELD* fields = mysql_fetch_fields(result);
    while (MYSQL_ROW row = mysql_fetch_row(result)) {
      unsigned long* lengths = mysql_fetch_lengths(result);
      MysqlRow out;
      for (unsigned i = 0; i < columns; ++i) {
        std::optional<std::string> value;
        if (row[i] != nullptr) value.emplace(row[i], lengths[i]);
        out.emplace(fields[i].name, std::move(value));
      }
      rows.push_back(std::move(out));
    }
    mysql_free_result(result);
    return rows;
  }

  MysqlError error(const std::string& label, std::chrono::steady_clock::time_point started) {
    MysqlError e{mysql_errno(conn_), mysql_error(conn_), false, false};
    // The client library reports a read timeout as a plain lost connection; only the time it
    // took tells the two apart.
    e.read_timed_out = std::chrono::steady_clock::now() - started >=
                       std::chrono::seconds(timeout_seconds_) - std::chrono::milliseconds(100);
    if (e.number == kUnknownSystemVariable && label.starts_with("SELECT @@")) {
      // The handshake's version said one flavour and the server knows the other's variables
      // (a proxy in between rewriting the version): use the other flavour from the next cycle.
      flavour_hint_ = !mariadb_;
      e.message += std::string(" (the next cycle reads ") + (mariadb_ ? "MySQL" : "MariaDB") +
                   "'s variables)";
    }
    e.message = label + ": " + e.message;
    return e;
  }

  std::string where() const {
    return "connecting to " + options_.host + ":" + std::to_string(options_.port) + ": ";
  }

  void release_socket() {
    std::lock_guard lock(mutex_);
    socket_ = -1;
  }

  bool was_aborted() {
    std::lock_guard lock(mutex_);
    return aborted_;
  }

  void close() {
    release_socket();
    if (conn_ != nullptr) mysql_close(conn_);
    conn_ = nullptr;
  }

  void fail(NodeSample& sample, CollectionError error, std::string message) {
    auto sampled_at = sample.sampled_at;
    sample = NodeSample{};  // nothing half-collected
    sample.sampled_at = sampled_at;
    sample.error = error;
    sample.error_message = std::move(message);
    close();  // reconnect next time: the connection's state is unknown
  }

  MysqlConnectOptions options_;
  std::optional<std::string> password_;
  unsigned timeout_seconds_;
  std::optional<HeartbeatConfig> heartbeat_;
  std::string cluster_;
  std::chrono::nanoseconds timeout_;  // per collection, connection attempts included
  MYSQL* conn_ = nullptr;
  bool mariadb_ = false;              // this connection's flavour
  std::optional<bool> flavour_hint_;  // set when the handshake's version proved wrong
  std::string replica_status_;        // the spelling this connection's server understands
  std::string binlog_status_;         // SHOW MASTER STATUS or SHOW BINARY LOG STATUS, likewise
  MysqlBinaryLogList binary_logs_;    // a primary's binlog files, listed when they may change
  std::mutex mutex_;  // guards socket_ and aborted_ against abort() from the scheduler
  int socket_ = -1;
  bool aborted_ = false;
};

}  // namespace

MysqlConnectOptions parse_mysql_dsn(const std::string& dsn) {
  auto invalid = [](const std::string& what) { throw std::invalid_argument("mysql dsn: " + what); };
  UrlHandle url;
  if (url.url == nullptr) throw std::bad_alloc();
  if (auto rc = curl_url_set(url.url, CURLUPART_URL, dsn.c_str(), CURLU_NON_SUPPORT_SCHEME);
      rc != CURLUE_OK)
    invalid(std::string("not a valid URI: ") + curl_url_strerror(rc));
  auto scheme = lower(url.part(CURLUPART_SCHEME).value_or(""));
  if (scheme != "mysql" && scheme != "mariadb")
    invalid("the scheme must be mysql:// or mariadb://, not \"" + scheme + "://\"");
  if (url.part(CURLUPART_PASSWORD))
    invalid("contains a password; put it in password_file or password_env");
  if (url.part(CURLUPART_FRAGMENT)) invalid("a fragment (#...) means nothing here");
  // curl takes "mysql:///db" to name host "db"; it names no host.
  auto authority = std::string_view(dsn).substr(dsn.find("://") + 3);
  if (authority.empty() || authority.front() == '/' || authority.front() == '?')
    invalid("names no host, e.g. mysql://lagwatch@10.0.0.2:3306/");

  MysqlConnectOptions o;
  o.host = url.part(CURLUPART_HOST).value_or("");
  if (o.host.size() > 2 && o.host.front() == '[' && o.host.back() == ']')
    o.host = o.host.substr(1, o.host.size() - 2);  // IPv6 literal
  if (o.host.empty()) invalid("names no host, e.g. mysql://lagwatch@10.0.0.2:3306/");
  o.user = url.part(CURLUPART_USER, CURLU_URLDECODE).value_or("");
  if (auto port = url.part(CURLUPART_PORT)) {
    try {
      std::size_t used = 0;
      unsigned long p = std::stoul(*port, &used);
      if (used != port->size() || p == 0 || p > 65535) throw std::out_of_range(*port);
      o.port = static_cast<unsigned>(p);
    } catch (const std::logic_error&) {
      invalid("port \"" + *port + "\" is not a TCP port");
    }
  }
  auto path = url.part(CURLUPART_PATH).value_or("/");
  if (path.size() > 1) {
    if (path.find('/', 1) != std::string::npos)
      invalid("the path \"" + path + "\" is not one database name");
    o.database = url_decode(std::string_view(path).substr(1));
  }

  bool mode_given = false;
  std::string_view query;
  auto query_text = url.part(CURLUPART_QUERY).value_or("");
  query = query_text;
  std::vector<std::string> seen;
  while (!query.empty()) {
    auto item = query.substr(0, query.find('&'));
    query.remove_prefix(std::min(query.size(), item.size() + 1));
    if (item.empty()) continue;
    auto equals = item.find('=');
    std::string key = url_decode(item.substr(0, equals));
    std::string value =
        equals == std::string_view::npos ? std::string() : url_decode(item.substr(equals + 1));
    if (std::find(seen.begin(), seen.end(), key) != seen.end())
      invalid("query parameter \"" + key + "\" is given twice");
    seen.push_back(key);
    if (key == "password") invalid("contains a password; put it in password_file or password_env");
    std::string* file = key == "ssl-ca"       ? &o.ssl_ca
                        : key == "ssl-cert"   ? &o.ssl_cert
                        : key == "ssl-key"    ? &o.ssl_key
                        : key == "ssl-capath" ? &o.ssl_capath
                                              : nullptr;
    if (file != nullptr) {
      if (value.empty()) invalid("query parameter \"" + key + "\" needs a path");
      *file = value;
    } else if (key == "ssl-mode") {
      o.ssl_mode = parse_ssl_mode(value);
      mode_given = true;
    } else {
      invalid("unknown query parameter \"" + key +
              "\" (known: ssl-mode, ssl-ca, ssl-capath, ssl-cert, ssl-key)");
    }
  }
  bool has_files =
      !o.ssl_ca.empty() || !o.ssl_capath.empty() || !o.ssl_cert.empty() || !o.ssl_key.empty();
  if (o.ssl_mode == MysqlSslMode::disabled && has_files)
    invalid("ssl-mode=DISABLED contradicts the ssl-ca/ssl-capath/ssl-cert/ssl-key given");
  if (o.ssl_cert.empty() != o.ssl_key.empty()) invalid("ssl-cert and ssl-key go together");
  // As the mysql client does: PREFERRED by default, but a CA without a mode means "verify the
  // server against it".
  if (!mode_given && (!o.ssl_ca.empty() || !o.ssl_capath.empty()))
    o.ssl_mode = MysqlSslMode::verify_ca;
  return o;
}

std::unique_ptr<Collector> make_mysql_collector(const CollectorContext& context) {
  return std::make_unique<MysqlCollector>(context);
}

namespace {

class MysqlHeartbeatSink final : public HeartbeatSink {
 public:
  explicit MysqlHeartbeatSink(const CollectorContext& c) : connection_(c) {}
  void write(WallTime at) override { connection_.write_heartbeat(at); }

 private:
  MysqlCollector connection_;
};

}  // namespace

std::unique_ptr<HeartbeatSink> make_mysql_heartbeat_sink(const CollectorContext& context) {
  return std::make_unique<MysqlHeartbeatSink>(context);
}

}  // namespace lagwatch
