// Config reload (see reloader.h).
#include "reloader.h"

#include "shard.h"

#include "log.h"

#include <prometheus/metric_family.h>

namespace lagwatch {

ConfigReloader::ConfigReloader(Config running, const CollectorRegistry& registry,
                               Scheduler& scheduler, const Clock& clock,
                               std::function<void(const Config&)> validate)
    : running_(std::move(running)),
      registry_(registry),
      scheduler_(scheduler),
      clock_(clock),
      validate_(std::move(validate)),
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
  if (next.server.listen != running_.server.listen ||
      next.server.agent_listen != running_.server.agent_listen ||
      next.routing.push != running_.routing.push)
    log_warn("[server] and [[routing.push]] changes take effect after a restart");
  running_ = std::move(next);
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
