// Config reload (see reloader.h).
#include "reloader.h"

#include <algorithm>
#include <optional>

#include <prometheus/metric_family.h>

#include "log.h"
#include "shard.h"

namespace lagwatch {

namespace {

std::string in_quotes(const std::string& name) { return "\"" + name + "\""; }

std::string joined(const std::vector<std::string>& parts, const char* separator) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : separator) + p;
  return out;
}

// `what` (added), `what` (removed), or `what`: key, key … for a changed one.
template <typename T>
void compare_optional(std::vector<std::string>& out, const std::string& what,
                      const std::optional<T>& started, const std::optional<T>& next,
                      const std::function<std::vector<std::string>(const T&, const T&)>& keys) {
  if (started.has_value() != next.has_value()) {
    out.push_back(what + (next ? " (added)" : " (removed)"));
    return;
  }
  if (!started || *started == *next) return;
  const auto changed = keys(*started, *next);
  out.push_back(changed.empty() ? what : what + " " + joined(changed, ", "));
}

template <typename Item, typename Name, typename Keys>
void compare_named(std::vector<std::string>& out, const std::string& what,
                   const std::vector<Item>& started, const std::vector<Item>& next, Name name,
                   Keys keys) {
  auto find = [&](const std::vector<Item>& in, const std::string& n) -> const Item* {
    for (const auto& i : in)
      if (name(i) == n) return &i;
    return nullptr;
  };
  for (const auto& s : started) {
    const Item* n = find(next, name(s));
    if (n == nullptr) {
      out.push_back(what + " " + in_quotes(name(s)) + " (removed)");
      continue;
    }
    const auto changed = keys(s, *n);
    if (!changed.empty())
      out.push_back(what + " " + in_quotes(name(s)) + ": " + joined(changed, ", "));
  }
  for (const auto& n : next)
    if (find(started, name(n)) == nullptr) out.push_back(what + " " + in_quotes(name(n)) + " (added)");
}

// The keys of `a` and `b` that differ, from a list of (key, differs).
std::vector<std::string> differing(std::initializer_list<std::pair<const char*, bool>> keys) {
  std::vector<std::string> out;
  for (const auto& [key, differs] : keys)
    if (differs) out.emplace_back(key);
  return out;
}

// What the heartbeat writer of a cluster uses: its name, engine, timeout, heartbeat settings
// and how to reach each node; thresholds, routing, addresses and positions in the file blanked.
ClusterConfig writer_settings(ClusterConfig c) {
  c.interval = {};
  c.routing = {};
  c.line = c.column = 0;
  for (auto& n : c.nodes) {
    n.address.clear();
    n.thresholds = {};
    n.line = n.column = 0;
  }
  return c;
}

bool writes_heartbeat(const ClusterConfig& c) {
  return c.heartbeat && c.heartbeat->mode == HeartbeatConfig::Mode::write;
}

}  // namespace

std::vector<std::string> restart_only_changes(const Config& started, const Config& next) {
  std::vector<std::string> out;
  const ServerConfig& s = started.server;
  const ServerConfig& n = next.server;
  if (s.listen != n.listen) out.push_back("[server] listen");
  if (s.agent_listen != n.agent_listen) out.push_back("[server] agent_listen");
  compare_optional<TlsOptions>(
      out, "[server.tls]", s.tls, n.tls, [](const TlsOptions& a, const TlsOptions& b) {
        return differing({{"cert_file", a.cert_file != b.cert_file},
                          {"key_file", a.key_file != b.key_file},
                          {"client_ca_file", a.client_ca_file != b.client_ca_file}});
      });
  compare_optional<BasicAuthOptions>(
      out, "[server.basic_auth]", s.basic_auth, n.basic_auth,
      [](const BasicAuthOptions& a, const BasicAuthOptions& b) {
        return differing(
            {{"users", a.users != b.users}, {"metrics_open", a.metrics_open != b.metrics_open}});
      });

  compare_named(
      out, "[[routing.push]]", started.routing.push, next.routing.push,
      [](const RoutingPush& p) { return p.name; },
      [](const RoutingPush& a, const RoutingPush& b) {
        return differing({{"url", a.url != b.url},
                          {"secret", a.secret != b.secret},
                          {"keepalive", a.keepalive != b.keepalive},
                          {"timeout", a.timeout != b.timeout}});
      });

  const AlertingConfig& sa = started.alerting;
  const AlertingConfig& na = next.alerting;
  for (const auto& [key, differs] :
       {std::pair{"group_wait", sa.group_wait != na.group_wait},
        std::pair{"repeat_interval", sa.repeat_interval != na.repeat_interval},
        std::pair{"keep_firing_for", sa.keep_firing_for != na.keep_firing_for},
        std::pair{"state_file", sa.state_file != na.state_file},
        std::pair{"status_page_url", sa.status_page_url != na.status_page_url},
        std::pair{"runbook_url", sa.runbook_url != na.runbook_url}})
    if (differs) out.push_back(std::string("[alerting] ") + key);
  for (const auto& c : kConditions) {
    const auto i = static_cast<std::size_t>(c.condition);
    if (sa.for_durations[i] != na.for_durations[i])
      out.push_back("[alerting.for] " + std::string(c.name));
  }
  compare_named(
      out, "[[alerting.receiver]]", sa.receivers, na.receivers,
      [](const AlertReceiver& r) { return r.name; },
      [](const AlertReceiver& a, const AlertReceiver& b) {
        return differing({{"type", a.type != b.type},
                          {"url", a.url != b.url},
                          {"routing_key", a.routing_key != b.routing_key},
                          {"conditions", a.conditions != b.conditions},
                          {"severities", a.severities != b.severities},
                          {"timeout", a.timeout != b.timeout},
                          {"repeat_interval", a.repeat_interval != b.repeat_interval}});
      });

  // Heartbeat writers run for the clusters in write mode at start, with those clusters'
  // settings. A removed cluster's writer finds no snapshot and stops writing by itself.
  for (const auto& c : next.clusters) {
    auto was = std::find_if(started.clusters.begin(), started.clusters.end(),
                            [&](const ClusterConfig& s) { return s.name == c.name; });
    const bool wrote = was != started.clusters.end() && writes_heartbeat(*was);
    if (!wrote && !writes_heartbeat(c)) continue;
    const std::string what = "[cluster.heartbeat] writer of cluster " + in_quotes(c.name);
    if (!wrote)
      out.push_back(what + " (added)");
    else if (!writes_heartbeat(c))
      out.push_back(what + " (removed)");
    else if (!(writer_settings(*was) == writer_settings(c)))
      out.push_back(what);
  }
  return out;
}

ConfigReloader::ConfigReloader(Config running, const CollectorRegistry& registry,
                               Scheduler& scheduler, const Clock& clock,
                               std::function<void(const Config&)> validate,
                               std::function<void(const std::vector<ClusterConfig>&)> applied)
    : started_(running),
      running_(std::move(running)),
      registry_(registry),
      scheduler_(scheduler),
      clock_(clock),
      validate_(std::move(validate)),
      applied_(std::move(applied)),
      last_success_(clock.now()) {}

std::string ConfigReloader::reload() {
  std::lock_guard lock(mutex_);
  Config next;
  try {
    next = load_config(running_.path);
    if (validate_) validate_(next);
    keep_own_shard(next);
    scheduler_.reconfigure(next.clusters, registry_);
  } catch (const std::exception& e) {
    last_successful_ = false;
    log_error("config reload failed; the running config stays", {{"error", e.what()}});
    return e.what();
  }
  // Compared with what runs since the start, not with the previous reload: a setting changed
  // twice is still not applied, and one changed back is no longer a difference.
  const auto not_applied = restart_only_changes(started_, next);
  if (!not_applied.empty())
    log_warn(
        "config reload: these settings changed but are NOT applied; they keep their "
        "values from the start until lagwatch is restarted",
        {{"not_applied", joined(not_applied, "; ")}});
  running_ = std::move(next);
  if (applied_) applied_(running_.clusters);
  last_successful_ = true;
  last_success_ = clock_.now();
  log_info("config reloaded", {{"clusters", running_.clusters.size()}});
  return "";
}

std::vector<prometheus::MetricFamily> ConfigReloader::Collect() const {
  std::lock_guard lock(mutex_);
  prometheus::ClientMetric ok;
  ok.gauge.value = last_successful_ ? 1 : 0;
  prometheus::ClientMetric at;
  at.gauge.value = std::chrono::duration<double>(last_success_.time_since_epoch()).count();
  return {{"lagwatch_config_last_reload_successful",
           "1 if the last config reload succeeded (or none was tried), 0 if it was refused.",
           prometheus::MetricType::Gauge,
           {ok}},
          {"lagwatch_config_last_reload_success_timestamp_seconds",
           "When the running config was last loaded successfully (Unix time).",
           prometheus::MetricType::Gauge,
           {at}}};
}

}  // namespace lagwatch
