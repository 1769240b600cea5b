// The configuration file: its model and its loader (design §4).
// Loading is the control plane: errors are exceptions carrying "file:line:column: message".
#pragma once

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

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
};

// Per-level override: a value set here replaces the one from the level above.
void apply_override(Thresholds& base, const Thresholds& override_values);

struct Secret {
  // Where the secret comes from, for messages: "password_file /run/secrets/pg" or
  // "password_env PGPASS". Never the secret itself.
  std::string origin;
  std::string value;  // read at load time; never logged
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
};

struct RoutingPush {
  std::string name;  // label for metrics and logs; default "host:port" of the url
  std::string url;
  std::optional<Secret> secret;
  Duration keepalive = std::chrono::seconds(30);
  Duration timeout = std::chrono::seconds(2);
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
};

struct ClusterConfig {
  std::string name;
  std::string engine;  // "postgres" or "mysql"
  Duration interval = std::chrono::seconds(1);
  Duration timeout = std::chrono::milliseconds(800);
  RoutingConfig routing;
  std::vector<NodeConfig> nodes;
  int line = 0;  // where the cluster was declared, for later messages
  int column = 0;
};

struct ServerConfig {
  std::string listen = ":9817";
  // The HAProxy agent-check responder's TCP address; "" (the default) leaves it off.
  std::string agent_listen;
};

struct Config {
  std::string path;  // the file it was read from
  ServerConfig server;
  RoutingConfig routing;
  std::vector<ClusterConfig> clusters;
};

// Reads and validates `path`. Throws ConfigError with "path:line:column: message" for every
// mistake: TOML syntax, unknown keys (with a "did you mean" suggestion), wrong types, bad
// durations or sizes, timeout >= interval, warning above critical, duplicate cluster or
// node names, unknown engine, a password inside a DSN, an unreadable password_file or an
// unset password_env. [alerting] is accepted unchecked for now. Relative password_file and
// secret_file paths are read from the config file's directory.
Config load_config(const std::string& path);

}  // namespace lagwatch
