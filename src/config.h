// The configuration file: its model and its loader (design §4).
// Loading is the control plane: errors are exceptions carrying "file:line:column: message".
#pragma once

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "alerting_conditions.h"
#include "http_server.h"
#include "units.h"

namespace lagwatch {

// A config mistake, already formatted as "file:line:column: what is wrong".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Warning and critical levels. Unset levels are not checked.
struct Thresholds {
  std::optional<double> lag_seconds_warning;
  std::optional<double> lag_seconds_critical;
  std::optional<Bytes> lag_bytes_warning;
  std::optional<Bytes> lag_bytes_critical;

  bool operator==(const Thresholds&) const = default;
};

// Per-level override: a value set here replaces the one from the level above.
void apply_override(Thresholds& base, const Thresholds& override_values);

struct Secret {
  // Where the secret comes from, for messages: "password_file /run/secrets/pg" or
  // "password_env PGPASS". Never the secret itself.
  std::string origin;
  std::string value;  // read at load time; never logged

  bool operator==(const Secret&) const = default;
};

struct NodeConfig {
  std::string name;
  std::string dsn;      // never contains a password (refused at load)
  std::string address;  // host:port that routers use
  std::optional<Secret> password;
  // PostgreSQL: the application_name the standby uses in primary_conninfo, to find it in
  // the primary's pg_stat_replication. Defaults to the node name.
  std::string application_name;
  Thresholds thresholds;  // fully resolved: defaults < cluster < node
  int line = 0;           // where the node was declared, for later messages
  int column = 0;

  bool operator==(const NodeConfig&) const = default;
};

struct RoutingPush {
  std::string name;  // label for metrics and logs; default "host:port" of the url
  std::string url;
  std::optional<Secret> secret;
  Duration keepalive = std::chrono::seconds(30);
  Duration timeout = std::chrono::seconds(2);

  bool operator==(const RoutingPush&) const = default;
};

// Routing policy. Config::routing holds the top-level [routing] table, the only place push
// targets are declared; ClusterConfig::routing is that table with the cluster's own
// [cluster.routing] values applied, and an empty `push`.
struct RoutingConfig {
  std::optional<double> max_lag_seconds = 5.0;
  std::optional<Bytes> max_lag_bytes;
  int rise = 3;
  int fall = 1;
  int min_serving = 1;
  bool fallback_to_primary = true;
  std::vector<RoutingPush> push;

  bool operator==(const RoutingConfig&) const = default;
};

// Heartbeat lag (design §2): lagwatch writes its own clock into a table on the primary every
// `interval` ("write"), or reads a table pt-heartbeat keeps ("read"); replicas read it back.
struct HeartbeatConfig {
  enum class Mode { write, read };
  Mode mode = Mode::write;
  std::string table;  // "schema.table"; checked to be a plain identifier pair
  Duration interval = std::chrono::milliseconds(250);
  // Read mode: the server_id of the pt-heartbeat row to read. Unset: the newest row (on
  // MySQL/MariaDB, of another server than the replica itself).
  std::optional<std::uint64_t> source_server_id;

  bool operator==(const HeartbeatConfig&) const = default;
};

struct ClusterConfig {
  std::string name;
  std::string engine;  // "postgres" or "mysql"
  Duration interval = std::chrono::seconds(1);
  Duration timeout = std::chrono::milliseconds(800);
  RoutingConfig routing;
  std::optional<HeartbeatConfig> heartbeat;  // off by default: writing needs a grant
  std::vector<NodeConfig> nodes;
  int line = 0;  // where the cluster was declared, for later messages
  int column = 0;

  bool operator==(const ClusterConfig&) const = default;
};

struct ServerConfig {
  std::string listen = ":9817";
  // The HAProxy agent-check responder's TCP address; "" (the default) leaves it off.
  std::string agent_listen;
  // shard = "i/n": this instance watches only the clusters rendezvous hashing gives shard i.
  int shard_index = 0;
  int shard_count = 1;
  // [server.tls]: HTTPS on `listen`; relative paths taken from the config file's directory.
  // The agent-check responder stays plain TCP.
  std::optional<TlsOptions> tls;
  // [server.basic_auth]: credentials for every HTTP endpoint but the probes.
  std::optional<BasicAuthOptions> basic_auth;
};

// Where the built-in notifier sends (docs/alerting.md).
enum class ReceiverType { slack, pagerduty, webhook, alertmanager };
const char* receiver_type_name(ReceiverType type);

// One [[alerting.receiver]].
struct AlertReceiver {
  std::string name;  // the `receiver` label and what logs and the state file call it
  ReceiverType type = ReceiverType::webhook;
  // Where to POST. Held as a Secret because a Slack or webhook URL is a credential (its path
  // is the token); never logged, exported or written to the state file. slack/webhook: from
  // url_file/url_env only; pagerduty: `url`, default the Events API v2 endpoint; alertmanager:
  // `url` or url_file/url_env, the base URL (lagwatch posts to <url>/api/v2/alerts).
  Secret url;
  std::optional<Secret> routing_key;  // pagerduty: the integration's routing key
  std::vector<Condition> conditions;  // sent only these; empty: every condition
  std::vector<Severity> severities;   // sent only these; empty: every severity
  Duration timeout = std::chrono::seconds(10);
  // Overrides [alerting] repeat_interval for this receiver; alertmanager defaults to 1m (it
  // forgets an alert not re-sent before its endsAt).
  std::optional<Duration> repeat_interval;
  int line = 0;  // where it was declared, for later messages
};

inline constexpr std::string_view kPagerDutyEventsUrl = "https://events.pagerduty.com/v2/enqueue";
inline constexpr std::string_view kDefaultRunbookUrl =
    "https://github.com/lagwatch/lagwatch/blob/main/docs/runbook.md";

// [alerting]: the built-in notifier's timers, state and receivers.
struct AlertingConfig {
  // A firing alert waits this long before its first notification; one that resolves within
  // it notifies nobody.
  Duration group_wait = std::chrono::seconds(10);
  Duration repeat_interval = std::chrono::hours(4);  // re-notify while firing
  // A firing alert whose condition clears stays firing this long (flap damping).
  Duration keep_firing_for = Duration::zero();
  std::string state_file;       // required with receivers; relative to the config's directory
  std::string status_page_url;  // "" until main() derives it from [server] listen
  std::string runbook_url = std::string(kDefaultRunbookUrl);  // "#<alertname>" is appended
  // `for` per condition, indexed by Condition: defaults of kConditions < [alerting.for].
  std::array<Duration, kConditions.size()> for_durations = [] {
    std::array<Duration, kConditions.size()> d{};
    for (const auto& c : kConditions) d[static_cast<std::size_t>(c.condition)] = c.default_for;
    return d;
  }();
  std::vector<AlertReceiver> receivers;
};

struct Config {
  std::string path;  // the file it was read from
  ServerConfig server;
  RoutingConfig routing;
  AlertingConfig alerting;
  std::vector<ClusterConfig> clusters;
};

// Reads and validates `path`. Throws ConfigError with "path:line:column: message" for every
// mistake: TOML syntax, unknown keys (with a "did you mean" suggestion), wrong types, bad
// durations or sizes, timeout >= interval, warning above critical, duplicate cluster or
// node names, unknown engine, a password inside a DSN, an unreadable password_file or an
// unset password_env, an unknown alert condition or receiver type, a receiver without its URL
// or routing key, receivers without a state_file. Relative password_file, secret_file,
// url_file, routing_key_file and state_file paths are taken from the config file's directory.
Config load_config(const std::string& path);

// load_config on text already read: `path` names it in messages and in Config::path, and its
// directory is the base of relative paths. Reads the secret and TLS files the text names;
// writes nothing. load_config reads the file and calls this; the config fuzzer calls it
// directly.
Config parse_config(std::string_view text, const std::string& path);

}  // namespace lagwatch
