// HTTP endpoints (see api.h).
#include "api.h"

#include <nlohmann/json.hpp>

#include <charconv>
#include <random>

#include "metrics.h"
#include "routing.h"
#include "status_page.h"
#include "units.h"

namespace lagwatch {

std::string iso8601(WallTime t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

namespace {

template <typename T>
nlohmann::json optional_json(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

// Bodies echo what clients and servers sent (a path, a parameter, a replica's error message),
// which need not be UTF-8: invalid bytes become U+FFFD rather than a throw, which would turn
// a 400 or 404 into a 500 (found by tests/fuzz/api_query_fuzz).
HttpResponse json_response(int status, const nlohmann::json& body) {
  return {status,
          "application/json",
          {},
          body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
          {}};
}

HttpResponse text_response(int status, std::string body) {
  return {status, "text/plain; charset=utf-8", {}, std::move(body), {}};
}

HttpResponse bad_parameter(const std::string& name, const std::string& why) {
  return json_response(400, {{"error", "query parameter \"" + name + "\": " + why},
                             {"parameter", name}});
}

std::vector<std::string> path_parts(const std::string& path) {
  std::vector<std::string> parts;
  std::size_t start = 1;
  while (start <= path.size()) {
    auto slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

// Consul's blocking-query bounds: 5 minutes by default, at most 10, plus up to 1/16 jitter
// so many routers started together do not all come back in the same millisecond.
constexpr auto kDefaultWait = std::chrono::minutes(5);
constexpr auto kMaxWait = std::chrono::minutes(10);

std::chrono::nanoseconds with_jitter(std::chrono::nanoseconds wait) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  auto span = wait.count() / 16;
  if (span <= 0) return wait;
  return wait + std::chrono::nanoseconds(std::uniform_int_distribution<long long>(0, span)(rng));
}

}  // namespace

nlohmann::json replica_list_json(const ClusterSnapshot& s, const ReplicaList& list) {
  nlohmann::json replicas = nlohmann::json::array();
  for (const auto& e : list.replicas) {
    nlohmann::json r{{"node", e.node},
                     {"address", e.address},
                     {"state", health_name(e.state)},
                     {"lag_seconds", optional_json(e.lag_seconds)},
                     {"lag_bytes", optional_json(e.lag_bytes)},
                     {"position", e.position ? nlohmann::json(e.position->text) : nullptr},
                     {"position_sampled_at", iso8601(e.position_sampled_at)},
                     {"weight", e.weight},
                     {"degraded", e.degraded}};
    if (!e.gtid_position.empty()) r["gtid_position"] = e.gtid_position;
    replicas.push_back(std::move(r));
  }
  nlohmann::json primary = nullptr;
  if (list.primary) {
    primary = {{"node", list.primary->node},
               {"address", list.primary->address},
               {"position", list.primary->position ? nlohmann::json(list.primary->position->text)
                                                   : nullptr}};
    if (!list.primary->gtid_position.empty()) primary["gtid_position"] = list.primary->gtid_position;
  }
  return {{"cluster", s.name},
          {"generation", list.generation},
          {"generated_at", iso8601(list.generated_at)},
          {"primary", std::move(primary)},
          {"replicas", std::move(replicas)},
          {"fallback", list.fallback}};
}

nlohmann::json cluster_json(const ClusterSnapshot& s) {
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto& n : s.nodes) {
    nlohmann::json node{{"name", n.name},
                        {"address", n.address},
                        {"up", n.up},
                        {"role", role_name(n.role)},
                        {"state", health_name(n.state)},
                        {"sampled_at", iso8601(n.sampled_at)}};
    if (!n.up) {
      node["error"] = {{"reason", error_reason(n.error)}, {"message", n.error_message}};
    }
    if (n.position) node["position"] = n.position->text;
    nlohmann::json channels = nlohmann::json::array();
    for (const auto& c : n.channels) {
      channels.push_back({{"name", c.name},
                          {"state", health_name(c.state)},
                          {"lag_seconds", optional_json(c.lag_seconds)},
                          {"lag_bytes", optional_json(c.lag_bytes)},
                          {"lag_from_engine", c.lag_from_engine},
                          {"lag_beyond_horizon", c.lag_beyond_horizon},
                          {"reported_lag_seconds", optional_json(c.reported_lag_seconds)},
                          {"heartbeat_lag_seconds", optional_json(c.heartbeat_lag_seconds)},
                          {"heartbeat_error", c.heartbeat_error},
                          {"connected", optional_json(c.connected)},
                          {"applying", optional_json(c.applying)},
                          {"apply_delay_seconds", optional_json(c.apply_delay_seconds)},
                          {"position", c.position ? nlohmann::json(c.position->text) : nullptr},
                          {"source", c.source},
                          {"last_io_errno", c.last_io_errno},
                          {"last_sql_errno", c.last_sql_errno},
                          {"last_error", c.last_error}});
    }
    if (n.is_replica_side()) node["channels"] = std::move(channels);
    if (n.stage) {
      node["primary_view"] = {{"write_lag_seconds", optional_json(n.stage->write_seconds)},
                              {"flush_lag_seconds", optional_json(n.stage->flush_seconds)},
                              {"replay_lag_seconds", optional_json(n.stage->replay_seconds)},
                              {"sent_lag_bytes", optional_json(n.stage->sent_bytes)},
                              {"write_lag_bytes", optional_json(n.stage->write_bytes)},
                              {"flush_lag_bytes", optional_json(n.stage->flush_bytes)},
                              {"replay_lag_bytes", optional_json(n.stage->replay_bytes)}};
    }
    nodes.push_back(std::move(node));
  }
  return {{"cluster", s.name},
          {"engine", s.engine},
          {"cycle", s.cycle},
          {"evaluated_at", iso8601(s.evaluated_at)},
          {"state", health_name(s.state)},
          {"primaries", s.primaries},
          {"primary", s.primary.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.primary)},
          {"nodes", std::move(nodes)}};
}

Api::Api(const SnapshotStore& store, ListWatchers& watchers, ApiOptions options)
    : store_(store),
      watchers_(watchers),
      options_(std::move(options)),
      metrics_(store) {}

void Api::handle(const HttpRequest& req, Responder respond) const {
  const auto& path = req.path;
  bool read = req.method == "GET" || req.method == "HEAD";
  if (path == "/metrics" && read) {
    HttpResponse response;
    response.content_type = "text/plain; version=0.0.4; charset=utf-8";
    response.shared_body = metrics_.pieces(options_.extra_collectables);
    respond(std::move(response));
  } else if (path == "/-/healthy" && read) {
    respond(text_response(200, "lagwatch is healthy.\n"));
  } else if (path == "/-/ready" && read) {
    if (store_.ready())
      respond(text_response(200, "lagwatch is ready.\n"));
    else
      respond(text_response(503, "lagwatch is not ready: not every cluster has completed a cycle.\n"));
  } else if (path == "/-/reload" && req.method == "POST") {
    if (!options_.reload) return respond(text_response(501, "reload is not available\n"));
    std::string error = options_.reload();
    respond(error.empty() ? text_response(200, "config reloaded\n")
                          : text_response(500, "reload failed, the running config stays: " + error + "\n"));
  } else if (path == "/api/v1/clusters" && read) {
    nlohmann::json clusters = nlohmann::json::array();
    for (const auto& s : store_.all()) clusters.push_back(cluster_json(*s));
    respond(json_response(200, {{"clusters", std::move(clusters)}}));
  } else if (auto parts = path_parts(path);
             parts.size() >= 4 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "clusters") {
    if (!read) return respond(json_response(405, {{"error", "method " + req.method + " is not allowed on " + path}}));
    if (!store_.known(parts[3]))
      return respond(json_response(404, {{"error", "no cluster named \"" + parts[3] + "\""}}));
    if (parts.size() == 5 && parts[4] == "replicas") return replicas(req, parts[3], std::move(respond));
    if (parts.size() == 7 && parts[4] == "nodes" && (parts[6] == "health" || parts[6] == "primary"))
      return node_health(req, parts[3], parts[5], parts[6] == "primary", std::move(respond));
    respond(json_response(404, {{"error", "no such endpoint: " + path}}));
  } else if (path == "/" && read) {
    respond({200, "text/html; charset=utf-8", {}, render_status_page(store_.all()), {}});
  } else if (path == "/metrics" || path == "/-/healthy" || path == "/-/ready" ||
             path == "/-/reload" || path == "/api/v1/clusters" || path == "/") {
    respond(json_response(405, {{"error", "method " + req.method + " is not allowed on " + path}}));
  } else {
    respond(json_response(404, {{"error", "no such endpoint: " + path}}));
  }
}

}  // namespace lagwatch

namespace lagwatch {

void Api::replicas(const HttpRequest& req, const std::string& cluster, Responder respond) const {
  std::optional<double> max_lag;
  std::optional<std::string> min_position;
  std::uint64_t index = 0;
  std::chrono::nanoseconds wait = kDefaultWait;
  const auto& q = req.query;
  std::string error;
  if (auto it = q.find("max_lag"); it != q.end()) {
    auto d = parse_duration(it->second, &error);
    if (!d) return respond(bad_parameter("max_lag", error));
    max_lag = to_seconds(*d);
  }
  if (auto it = q.find("min_position"); it != q.end()) {
    if (it->second.empty()) return respond(bad_parameter("min_position", "is empty"));
    min_position = it->second;
  }
  if (auto it = q.find("index"); it != q.end()) {
    const auto& v = it->second;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), index);
    if (v.empty() || ec != std::errc() || p != v.data() + v.size())
      return respond(bad_parameter("index", "\"" + v + "\" is not a non-negative integer"));
  }
  if (auto it = q.find("wait"); it != q.end()) {
    auto d = parse_duration(it->second, &error);
    if (!d) return respond(bad_parameter("wait", error));
    wait = std::min<std::chrono::nanoseconds>(*d, kMaxWait);
  }

  auto snapshot = store_.get(cluster);
  std::string engine = snapshot ? snapshot->engine : "";
  if (min_position && snapshot) {
    ChannelStatus probe;
    if (!position_reached(engine, *min_position, probe).has_value())
      return respond(bad_parameter("min_position", "\"" + *min_position +
                                                       "\" is not a position of this engine (PostgreSQL LSN like 0/3000060, "
                                                       "MariaDB GTID like 0-1-42, MySQL GTID set like uuid:1-42)"));
  }

  auto answer = [max_lag, min_position, respond](std::shared_ptr<const ClusterSnapshot> snap) {
    if (!snap) {
      respond(json_response(503, {{"error", "the cluster has not completed a cycle yet"}}));
      return;
    }
    ReplicaList view = snap->list;
    if (max_lag || min_position) {
      std::erase_if(view.replicas, [&](const ReplicaListEntry& e) {
        if (max_lag && (!e.lag_seconds || *e.lag_seconds > *max_lag)) return true;
        if (min_position) {
          ChannelStatus replayed;
          replayed.position = e.position;
          replayed.gtid_position = e.gtid_position;
          return position_reached(snap->engine, *min_position, replayed) != true;
        }
        return false;
      });
      if (view.replicas.empty())
        view.fallback = snap->fallback_to_primary && view.primary ? "primary" : "none";
    }
    auto gen = std::to_string(snap->list.generation);
    HttpResponse r = json_response(200, replica_list_json(*snap, view));
    r.headers = {{"X-Lagwatch-Index", gen}, {"ETag", "W/\"" + gen + "\""}, {"Cache-Control", "no-store"}};
    respond(std::move(r));
  };

  // A long poll when the client already has this generation; an index from the future (the
  // generation cannot go back, so a stale or invented one) is answered at once, as Consul does.
  bool block = index > 0 && snapshot && index == snapshot->list.generation;
  if (!block) return answer(snapshot);
  auto deadline = std::chrono::steady_clock::now() + with_jitter(wait);
  if (!watchers_.wait(cluster, index, deadline, answer))
    respond(json_response(503, {{"error", "too many long polls are waiting; retry later"}}));
}

void Api::node_health(const HttpRequest& req, const std::string& cluster, const std::string& node_name,
                      bool primary, Responder respond) const {
  std::optional<double> max_lag;
  if (auto it = req.query.find("max_lag"); it != req.query.end()) {
    std::string error;
    auto d = parse_duration(it->second, &error);
    if (!d) return respond(bad_parameter("max_lag", error));
    max_lag = to_seconds(*d);
  }
  auto snap = store_.get(cluster);
  if (!snap) return respond(json_response(503, {{"status", "unknown"}, {"reason", "no cycle completed yet"}}));
  const NodeStatus* node = nullptr;
  for (const auto& n : snap->nodes)
    if (n.name == node_name) node = &n;
  if (node == nullptr)
    return respond(json_response(404, {{"error", "cluster \"" + cluster + "\" has no node named \"" + node_name + "\""}}));

  auto verdict = [&](bool ok, const std::string& reason) {
    nlohmann::json body{{"cluster", cluster}, {"node", node_name}, {"role", role_name(node->role)},
                        {"state", health_name(node->state)}, {"routable", node->routable},
                        {"status", ok ? "pass" : "fail"}, {"reason", reason}};
    if (const ChannelStatus* c = node->main()) body["lag_seconds"] = optional_json(c->lag_seconds);
    respond(json_response(ok ? 200 : 503, body));
  };
  if (primary) {
    if (snap->primaries != 1) return verdict(false, std::to_string(snap->primaries) + " writable primaries");
    return verdict(snap->primary == node_name, snap->primary == node_name ? "the writable primary" : "not the primary");
  }
  if (!node->up) return verdict(false, std::string("unreachable: ") + error_reason(node->error));
  if (node->role != Role::replica) return verdict(false, std::string("role is ") + role_name(node->role));
  if (!node->routable) return verdict(false, "not in the replica list (lagging, disconnected or rising)");
  const ChannelStatus* c = node->main();
  if (max_lag && (c == nullptr || !c->lag_seconds || *c->lag_seconds > *max_lag))
    return verdict(false, "lag above max_lag");
  verdict(true, "routable replica");
}

}  // namespace lagwatch
