// Config reload (SIGHUP, POST /-/reload): re-reads the file and applies its clusters to the
// scheduler, or keeps the running config when the new one is bad.
#pragma once

#include <functional>
#include <mutex>
#include <string>

#include <prometheus/collectable.h>

#include "clock.h"
#include "collector.h"
#include "config.h"
#include "scheduler.h"

namespace lagwatch {

class ConfigReloader final : public prometheus::Collectable {
 public:
  // `validate` checks what load_config cannot (collectors for the engines, DSNs) and throws
  // ConfigError.
  ConfigReloader(Config running, const CollectorRegistry& registry, Scheduler& scheduler,
                 const Clock& clock, std::function<void(const Config&)> validate);

  // Returns "" when the new config is running, else the file:line:column error; the running
  // config then stays. Settings outside [[cluster]] ([server], [[routing.push]],
  // [alerting]) need a restart; a reload that changes them says so in the log.
  std::string reload();

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  mutable std::mutex mutex_;
  Config running_;
  const CollectorRegistry& registry_;
  Scheduler& scheduler_;
  const Clock& clock_;
  std::function<void(const Config&)> validate_;
  bool last_successful_ = true;
  WallTime last_success_;
};

}  // namespace lagwatch
