// What the notifier sends (docs/alerting.md): Slack incoming-webhook messages, PagerDuty Events
// API v2 events, Alertmanager-webhook-like bodies and Alertmanager API v2 alerts. Pure functions
// of alerts and a context; the exact bodies are pinned by tests/unit/alerting_payloads_test.cpp.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "alerting.h"

namespace lagwatch {

struct PayloadContext {
  std::string receiver;         // the receiver's name (webhook "receiver")
  std::string status_page_url;  // lagwatch's status page, linked from every message
  std::string runbook_url;      // docs/runbook.md; "#<alertname in lower case>" is appended
};

// "http://<listen>/": a listen address without a host (":9817", "0.0.0.0:9817", "[::]:9817")
// gets `hostname`, since a link to 0.0.0.0 leads nowhere.
std::string default_status_page_url(const std::string& listen, const std::string& hostname);

// The runbook section of an alert's condition.
std::string runbook_link(const PayloadContext& context, Condition condition);

// The figures a message shows for an alert, in order: ("Cluster", "orders"), ("Node", "pg2"),
// ("Lag", "12.3s (1.2MiB)"), ("Threshold", "5.0s / 100MiB"), ("State", "critical"), …
std::vector<std::pair<std::string, std::string>> alert_fields(const Alert& alert);

// One Slack message for everything `works` (all of one cluster) says: a readable `text` (what
// notifications and clients without blocks show) and `blocks` with a section per alert.
nlohmann::json slack_message(const std::string& cluster, const std::vector<Work>& works,
                             const PayloadContext& context);

// A PagerDuty Events API v2 event: "trigger" (with the payload) or "resolve" (just the keys).
nlohmann::json pagerduty_event(const Alert& alert, bool trigger, const std::string& routing_key,
                               const PayloadContext& context);

// An Alertmanager-webhook-like body (version "4") for one cluster's works.
nlohmann::json webhook_message(const std::string& cluster, const std::vector<Work>& works,
                               const PayloadContext& context);

// The body of POST <alertmanager>/api/v2/alerts: firing alerts with endsAt `now +
// 4 * resend_interval` (so Alertmanager keeps them between our re-sends, as Prometheus does),
// resolved ones with endsAt their resolution time.
nlohmann::json alertmanager_alerts(const std::vector<Work>& works, const PayloadContext& context,
                                   WallTime now, Duration resend_interval);

}  // namespace lagwatch
