// Config reload (SIGHUP, POST /-/reload): re-reads the file and applies its clusters to the
// scheduler, or keeps the running config when the new one is bad.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/collectable.h>

#include "clock.h"
#include "collector.h"
#include "config.h"
#include "scheduler.h"

namespace lagwatch {

// The settings a reload cannot apply that differ between `started` (what the process runs
// with since its start) and `next` (the file now), one entry per setting, e.g.
// `[server] listen`, `[server.tls] cert_file`, `[[routing.push]] "router": keepalive`,
// `[alerting] group_wait`, `[[alerting.receiver]] "oncall" (added)`,
// `[cluster.heartbeat] writer of cluster "orders"`. Empty when none changed. Names where a
// secret changed, never the secret.
//
// Restart-only: [server] listen and agent_listen, [server.tls], [server.basic_auth],
// [[routing.push]] (and [routing] keepalive, which sets the pushes' default), everything of
// [alerting], and the heartbeat writer of a cluster in `write` mode (it keeps the cluster's
// heartbeat, engine, timeout and nodes it started with).
std::vector<std::string> restart_only_changes(const Config& started, const Config& next);

class ConfigReloader final : public prometheus::Collectable {
 public:
  // `running` is the config the process started with, as loaded. `validate` checks what
  // load_config cannot (collectors for the engines, DSNs) and throws ConfigError. `applied`
  // (may be empty) is told the clusters this instance watches after each reload that
  // succeeded, once the scheduler runs them (the notifier resolves what was removed).
  ConfigReloader(Config running, const CollectorRegistry& registry, Scheduler& scheduler,
                 const Clock& clock, std::function<void(const Config&)> validate,
                 std::function<void(const std::vector<ClusterConfig>&)> applied = {});

  // Returns "" when the new config is running, else the file:line:column error; the running
  // config then stays. The restart-only settings (restart_only_changes) keep their values
  // from the start; a reload that finds them changed logs one warning naming each of them.
  std::string reload();

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  mutable std::mutex mutex_;
  const Config started_;  // what the restart-only parts run with
  Config running_;
  const CollectorRegistry& registry_;
  Scheduler& scheduler_;
  const Clock& clock_;
  std::function<void(const Config&)> validate_;
  std::function<void(const std::vector<ClusterConfig>&)> applied_;
  bool last_successful_ = true;
  WallTime last_success_;
};

}  // namespace lagwatch
