// The exact bodies the notifier sends: Slack incoming-webhook messages, PagerDuty Events API v2
// events, the Alertmanager-webhook-like body and Alertmanager API v2 alerts, field by field.
#include "notifier_payloads.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace lagwatch {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

WallTime t0() { return WallTime{} + std::chrono::seconds(1795550400); }  // 2026-11-24T20:00:00Z

const PayloadContext kContext{"oncall", "http://lagwatch.internal:9817/",
                              "https://github.com/lagwatch/lagwatch/blob/main/docs/runbook.md"};

Alert lag_critical() {
  Alert a;
  a.key = AlertKey{Condition::lag_critical, "orders", "pg2", ""};
  a.severity = Severity::critical;
  a.firing_since = t0() + 30s;
  a.facts.engine = "postgres";
  a.facts.state = "critical";
  a.facts.lag_seconds = 12.34;
  a.facts.lag_bytes = 3ULL << 20;
  a.facts.threshold_seconds = 5.0;
  a.facts.threshold_bytes = 100ULL << 20;
  a.facts.summary =
      "Replica orders/pg2 lags 12.3s (3MiB) behind its primary, above its critical threshold "
      "(5.0s / 100MiB)";
  return a;
}

Alert split_brain() {
  Alert a;
  a.key = AlertKey{Condition::split_brain, "orders", "", ""};
  a.severity = Severity::critical;
  a.firing_since = t0() + 1s;
  a.facts.engine = "postgres";
  a.facts.state = "critical";
  a.facts.primaries = 2;
  a.facts.primary_nodes = {"pg1", "pg2"};
  a.facts.summary = "Split-brain: 2 writable primaries in cluster orders (pg1, pg2)";
  return a;
}

Alert resolved(Alert a, WallTime at) {
  a.resolved_at = at;
  return a;
}

TEST(PagerDutyEvent, TriggerCarriesTheV2PayloadFieldByField) {
  const json e = pagerduty_event(lag_critical(), true, "R0UT1NGKEY", kContext);
  EXPECT_EQ(e["routing_key"], "R0UT1NGKEY");
  EXPECT_EQ(e["event_action"], "trigger");
  EXPECT_EQ(e["dedup_key"], "lagwatch:orders:pg2:lag_critical");
  const json& p = e["payload"];
  EXPECT_EQ(p["summary"],
            "Replica orders/pg2 lags 12.3s (3MiB) behind its primary, above its critical "
            "threshold (5.0s / 100MiB)");
  EXPECT_EQ(p["source"], "orders/pg2");
  EXPECT_EQ(p["severity"], "critical");
  EXPECT_EQ(p["timestamp"], "2026-11-24T20:00:30.000Z");
  EXPECT_EQ(p["component"], "pg2");
  EXPECT_EQ(p["group"], "orders");
  EXPECT_EQ(p["class"], "lag_critical");
  EXPECT_EQ(p["custom_details"], (json{{"alertname", "LagwatchReplicaLagCritical"},
                                       {"condition", "lag_critical"},
                                       {"cluster", "orders"},
                                       {"node", "pg2"},
                                       {"engine", "postgres"},
                                       {"state", "critical"},
                                       {"lag_seconds", 12.34},
                                       {"lag_bytes", 3ULL << 20},
                                       {"threshold_seconds", 5.0},
                                       {"threshold_bytes", 100ULL << 20},
                                       {"firing_since", "2026-11-24T20:00:30.000Z"}}));
  EXPECT_EQ(p.size(), 8u) << p.dump(2);
  EXPECT_EQ(e["client"], "lagwatch");
  EXPECT_EQ(e["client_url"], "http://lagwatch.internal:9817/");
  EXPECT_EQ(e["links"],
            (json{{{"href", "http://lagwatch.internal:9817/"}, {"text", "lagwatch status page"}},
                  {{"href",
                    "https://github.com/lagwatch/lagwatch/blob/main/docs/runbook.md"
                    "#lagwatchreplicalagcritical"},
                   {"text", "Runbook: LagwatchReplicaLagCritical"}}}));
  EXPECT_EQ(e.size(), 7u) << e.dump(2);
}

TEST(PagerDutyEvent, ResolveIsJustTheKeys) {
  const json e =
      pagerduty_event(resolved(lag_critical(), t0() + 2min), false, "R0UT1NGKEY", kContext);
  EXPECT_EQ(e, (json{{"routing_key", "R0UT1NGKEY"},
                     {"event_action", "resolve"},
                     {"dedup_key", "lagwatch:orders:pg2:lag_critical"}}));
}

TEST(PagerDutyEvent, ClusterAlertHasNoComponentAndItsOwnDetails) {
  const json e = pagerduty_event(split_brain(), true, "K", kContext);
  EXPECT_EQ(e["dedup_key"], "lagwatch:orders:split_brain");
  EXPECT_EQ(e["payload"]["source"], "orders");
  EXPECT_FALSE(e["payload"].contains("component"));
  EXPECT_EQ(e["payload"]["custom_details"], (json{{"alertname", "LagwatchSplitBrain"},
                                                  {"condition", "split_brain"},
                                                  {"cluster", "orders"},
                                                  {"engine", "postgres"},
                                                  {"state", "critical"},
                                                  {"primaries", 2},
                                                  {"primary_nodes", {"pg1", "pg2"}},
                                                  {"firing_since", "2026-11-24T20:00:01.000Z"}}));
}

TEST(SlackMessage, OneFiringAlertFieldByField) {
  const json m =
      slack_message("orders", {Work{WorkKind::trigger, false, lag_critical()}}, kContext);
  EXPECT_EQ(m["text"],
            "[FIRING:1] lagwatch: cluster orders\n"
            "• CRITICAL lag_critical on pg2: Replica orders/pg2 lags 12.3s (3MiB) behind its "
            "primary, above its critical threshold (5.0s / 100MiB)\n"
            "<http://lagwatch.internal:9817/|Status page>");
  ASSERT_EQ(m["blocks"].size(), 3u) << m.dump(2);
  EXPECT_EQ(
      m["blocks"][0],
      (json{{"type", "header"},
            {"text", {{"type", "plain_text"}, {"text", "[FIRING:1] lagwatch: cluster orders"}}}}));
  const json& section = m["blocks"][1];
  EXPECT_EQ(section["type"], "section");
  EXPECT_EQ(section["text"],
            (json{{"type", "mrkdwn"},
                  {"text",
                   ":red_circle: *CRITICAL lag_critical on pg2*\nReplica orders/pg2 lags 12.3s "
                   "(3MiB) behind its primary, above its critical threshold (5.0s / 100MiB)"}}));
  EXPECT_EQ(section["fields"],
            (json{{{"type", "mrkdwn"}, {"text", "*Cluster*\norders"}},
                  {{"type", "mrkdwn"}, {"text", "*Node*\npg2"}},
                  {{"type", "mrkdwn"}, {"text", "*Lag*\n12.3s (3MiB)"}},
                  {{"type", "mrkdwn"}, {"text", "*Threshold*\n5.0s / 100MiB"}},
                  {{"type", "mrkdwn"}, {"text", "*State*\ncritical"}},
                  {{"type", "mrkdwn"}, {"text", "*Since*\n2026-11-24T20:00:30.000Z"}}}));
  EXPECT_EQ(m["blocks"][2],
            (json{{"type", "context"},
                  {"elements",
                   {{{"type", "mrkdwn"},
                     {"text",
                      "<https://github.com/lagwatch/lagwatch/blob/main/docs/runbook.md"
                      "#lagwatchreplicalagcritical|Runbook> · <http://lagwatch.internal:9817/|"
                      "Status page> · dedup_key `lagwatch:orders:pg2:lag_critical`"}}}}}));
  EXPECT_EQ(m.size(), 2u);
}

TEST(SlackMessage, FiringAndResolvedOfOneClusterShareOneMessage) {
  const json m =
      slack_message("orders",
                    {Work{WorkKind::repeat, true, split_brain()},
                     Work{WorkKind::resolve, true, resolved(lag_critical(), t0() + 2min)},
                     Work{WorkKind::resolve, false, resolved(lag_critical(), t0() + 2min)}},
                    kContext);
  EXPECT_EQ(m["text"],
            "[FIRING:1, RESOLVED:2] lagwatch: cluster orders\n"
            "• CRITICAL (still firing) split_brain on cluster orders: Split-brain: 2 writable "
            "primaries in cluster orders (pg1, pg2)\n"
            "• RESOLVED lag_critical on pg2: Last seen: Replica orders/pg2 lags 12.3s (3MiB) "
            "behind its primary, above its critical threshold (5.0s / 100MiB)\n"
            "• RESOLVED lag_critical on pg2: Last seen: Replica orders/pg2 lags 12.3s (3MiB) "
            "behind its primary, above its critical threshold (5.0s / 100MiB). It fired at "
            "2026-11-24T20:00:30.000Z but could not be delivered before it resolved.\n"
            "<http://lagwatch.internal:9817/|Status page>");
  ASSERT_EQ(m["blocks"].size(), 7u);
  EXPECT_EQ(m["blocks"][1]["fields"][1],
            (json{{"type", "mrkdwn"}, {"text", "*Primaries*\n2 (pg1, pg2)"}}));
  EXPECT_EQ(m["blocks"][3]["text"]["text"],
            ":large_green_circle: *RESOLVED lag_critical on pg2*\nLast seen: Replica orders/pg2 "
            "lags 12.3s (3MiB) behind its primary, above its critical threshold (5.0s / 100MiB)");
  EXPECT_EQ(m["blocks"][3]["fields"].back(),
            (json{{"type", "mrkdwn"}, {"text", "*Resolved*\n2026-11-24T20:02:00.000Z"}}));
}

TEST(SlackMessage, EscapesMarkupAndCapsTheBlocks) {
  Alert a = lag_critical();
  a.facts.summary = "a <b> & c";
  std::vector<Work> works(25, Work{WorkKind::trigger, false, a});
  const json m = slack_message("orders", works, kContext);
  EXPECT_NE(m["text"].get<std::string>().find("a &lt;b&gt; &amp; c"), std::string::npos);
  EXPECT_EQ(m["blocks"].size(), 1u + 2 * 20 + 1);
  EXPECT_EQ(m["blocks"].back()["text"]["text"],
            "…and 5 more: see the <http://lagwatch.internal:9817/|status page>");
}

TEST(WebhookMessage, AlertmanagerWebhookShapeFieldByField) {
  const json m =
      webhook_message("orders",
                      {Work{WorkKind::trigger, false, lag_critical()},
                       Work{WorkKind::resolve, true, resolved(split_brain(), t0() + 1min)}},
                      kContext);
  EXPECT_EQ(m["version"], "4");
  EXPECT_EQ(m["groupKey"], "lagwatch:orders");
  EXPECT_EQ(m["truncatedAlerts"], 0);
  EXPECT_EQ(m["status"], "firing");
  EXPECT_EQ(m["receiver"], "oncall");
  EXPECT_EQ(m["groupLabels"], (json{{"cluster", "orders"}}));
  EXPECT_EQ(m["commonLabels"],
            (json{{"cluster", "orders"}, {"severity", "critical"}, {"engine", "postgres"}}));
  EXPECT_EQ(m["commonAnnotations"], json::object());
  EXPECT_EQ(m["externalURL"], "http://lagwatch.internal:9817/");
  ASSERT_EQ(m["alerts"].size(), 2u);
  EXPECT_EQ(m["alerts"][0],
            (json{{"status", "firing"},
                  {"labels",
                   {{"alertname", "LagwatchReplicaLagCritical"},
                    {"condition", "lag_critical"},
                    {"cluster", "orders"},
                    {"node", "pg2"},
                    {"severity", "critical"},
                    {"engine", "postgres"}}},
                  {"annotations",
                   {{"summary",
                     "Replica orders/pg2 lags 12.3s (3MiB) behind its primary, above its "
                     "critical threshold (5.0s / 100MiB)"},
                    {"description",
                     "Cluster: orders; Node: pg2; Lag: 12.3s (3MiB); Threshold: 5.0s / 100MiB; "
                     "State: critical; Since: 2026-11-24T20:00:30.000Z"},
                    {"runbook_url",
                     "https://github.com/lagwatch/lagwatch/blob/main/docs/runbook.md"
                     "#lagwatchreplicalagcritical"},
                    {"dedup_key", "lagwatch:orders:pg2:lag_critical"}}},
                  {"startsAt", "2026-11-24T20:00:30.000Z"},
                  {"endsAt", "0001-01-01T00:00:00Z"},
                  {"generatorURL", "http://lagwatch.internal:9817/"},
                  {"fingerprint", "b11c48c3fd01cd25"}}));
  EXPECT_EQ(m["alerts"][1]["status"], "resolved");
  EXPECT_EQ(m["alerts"][1]["startsAt"], "2026-11-24T20:00:01.000Z");
  EXPECT_EQ(m["alerts"][1]["endsAt"], "2026-11-24T20:01:00.000Z");
  EXPECT_EQ(m["alerts"][1]["fingerprint"], "1d4a83eecaad0f31");

  const json done = webhook_message(
      "orders", {Work{WorkKind::resolve, true, resolved(split_brain(), t0() + 1min)}}, kContext);
  EXPECT_EQ(done["status"], "resolved");
}

TEST(AlertmanagerAlerts, FiringEndsAheadResolvedEndsWhenResolved) {
  const json alerts =
      alertmanager_alerts({Work{WorkKind::repeat, true, lag_critical()},
                           Work{WorkKind::resolve, true, resolved(split_brain(), t0() + 1min)}},
                          kContext, t0() + 2min, 1min);
  ASSERT_EQ(alerts.size(), 2u);
  EXPECT_EQ(alerts[0]["startsAt"], "2026-11-24T20:00:30.000Z");
  EXPECT_EQ(alerts[0]["endsAt"], "2026-11-24T20:06:00.000Z");
  EXPECT_EQ(alerts[0]["labels"]["alertname"], "LagwatchReplicaLagCritical");
  EXPECT_EQ(alerts[0]["generatorURL"], "http://lagwatch.internal:9817/");
  EXPECT_EQ(alerts[0].size(), 5u);
  EXPECT_EQ(alerts[1]["endsAt"], "2026-11-24T20:01:00.000Z");
}

TEST(StatusPageUrl, DefaultsToTheListenAddressWithAHostname) {
  EXPECT_EQ(default_status_page_url(":9817", "db-mon-1"), "http://db-mon-1:9817/");
  EXPECT_EQ(default_status_page_url("0.0.0.0:9817", "db-mon-1"), "http://db-mon-1:9817/");
  EXPECT_EQ(default_status_page_url("[::]:9817", "db-mon-1"), "http://db-mon-1:9817/");
  EXPECT_EQ(default_status_page_url("127.0.0.1:9900", "db-mon-1"), "http://127.0.0.1:9900/");
  EXPECT_EQ(default_status_page_url("[::1]:9900", "x"), "http://[::1]:9900/");
}

}  // namespace
}  // namespace lagwatch
