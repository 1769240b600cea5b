// The built-in notifier's conditions (design §6, docs/alerting.md): names, severities, default
// `for` durations and the Prometheus alert (alerts/lagwatch.rules.yml) each one matches.
#pragma once

#include <array>
#include <chrono>
#include <optional>
#include <string_view>

#include "units.h"

namespace lagwatch {

enum class Severity { warning, critical };
const char* severity_name(Severity severity);
std::optional<Severity> parse_severity(std::string_view name);

enum class Condition {
  lag_warning,           // a replica stream's lag above its warning threshold (seconds or bytes)
  lag_critical,          // … above its critical threshold
  node_down,             // lagwatch cannot collect the node
  replica_disconnected,  // a reachable replica has no stream from its primary
  replica_not_applying,  // replay paused / SQL thread stopped
  split_brain,           // more than one writable primary in the cluster
  no_primary,            // no writable primary in the cluster
  no_routable_replica,   // the replica list is empty (or falls back to the primary)
};

struct ConditionInfo {
  Condition condition;
  std::string_view name;  // config keys, PagerDuty class, webhook label `condition`
  // The alert of alerts/lagwatch.rules.yml for the same condition; its lower-case form is the
  // anchor of its section in docs/runbook.md. Lag conditions cover both the seconds and the
  // bytes rules (LagwatchReplicaLagBytes*), whose runbook sections point back to these.
  std::string_view alertname;
  Severity severity;
  Duration default_for;
  bool per_node;  // one alert per (cluster, node[, channel]); else one per cluster
};

inline constexpr std::array<ConditionInfo, 8> kConditions = {{
    {Condition::lag_warning, "lag_warning", "LagwatchReplicaLagWarning", Severity::warning,
     std::chrono::minutes(1), true},
    {Condition::lag_critical, "lag_critical", "LagwatchReplicaLagCritical", Severity::critical,
     std::chrono::seconds(30), true},
    {Condition::node_down, "node_down", "LagwatchNodeDown", Severity::critical,
     std::chrono::seconds(30), true},
    {Condition::replica_disconnected, "replica_disconnected", "LagwatchReplicaDisconnected",
     Severity::critical, std::chrono::seconds(30), true},
    {Condition::replica_not_applying, "replica_not_applying", "LagwatchReplicaNotApplying",
     Severity::warning, std::chrono::minutes(1), true},
    {Condition::split_brain, "split_brain", "LagwatchSplitBrain", Severity::critical,
     std::chrono::seconds(0), false},
    {Condition::no_primary, "no_primary", "LagwatchNoPrimary", Severity::critical,
     std::chrono::seconds(30), false},
    {Condition::no_routable_replica, "no_routable_replica", "LagwatchNoRoutableReplica",
     Severity::critical, std::chrono::minutes(1), false},
}};

inline const ConditionInfo& condition_info(Condition condition) {
  return kConditions[static_cast<std::size_t>(condition)];
}
std::optional<Condition> parse_condition(std::string_view name);

}  // namespace lagwatch
