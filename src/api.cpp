// HTTP endpoints (see api.h).
#include "api.h"

#include <nlohmann/json.hpp>

#include "metrics.h"
#include "status_page.h"
#include "units.h"

namespace lagwatch {
namespace {

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

template <typename T>
nlohmann::json optional_json(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

HttpResponse json_response(int status, const nlohmann::json& body) {
  return {status, "application/json", {}, body.dump() + "\n"};
}

HttpResponse text_response(int status, std::string body) {
  return {status, "text/plain; charset=utf-8", {}, std::move(body)};
}

}  // namespace

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

Api::Api(const SnapshotStore& store, ApiOptions options)
    : store_(store),
      options_(std::move(options)),
      snapshots_(std::make_unique<SnapshotCollectable>(store)) {}

void Api::handle(const HttpRequest& req, Responder respond) const {
  const auto& path = req.path;
  bool read = req.method == "GET" || req.method == "HEAD";
  if (path == "/metrics" && read) {
    std::vector<const prometheus::Collectable*> all{snapshots_.get()};
    all.insert(all.end(), options_.extra_collectables.begin(), options_.extra_collectables.end());
    respond({200, "text/plain; version=0.0.4; charset=utf-8", {}, serialize_metrics(all)});
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
  } else if (path == "/" && read) {
    respond({200, "text/html; charset=utf-8", {}, render_status_page(store_.all())});
  } else if (path == "/metrics" || path == "/-/healthy" || path == "/-/ready" ||
             path == "/-/reload" || path == "/api/v1/clusters" || path == "/") {
    respond(json_response(405, {{"error", "method " + req.method + " is not allowed on " + path}}));
  } else {
    respond(json_response(404, {{"error", "no such endpoint: " + path}}));
  }
}

}  // namespace lagwatch
