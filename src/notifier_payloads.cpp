// Bodies the notifier sends (see notifier_payloads.h), built with nlohmann::json.
#include "notifier_payloads.h"

#include <algorithm>
#include <cctype>

#include "api.h"

namespace lagwatch {

namespace {

// Slack shows at most 50 blocks per message; two per alert plus a header leaves room for this.
constexpr std::size_t kSlackAlertsShown = 20;
constexpr std::size_t kPagerDutySummaryMax = 1024;  // Events API v2 limit
// Alertmanager's zero time: what its webhook sends as endsAt for a firing alert.
constexpr const char* kZeroTime = "0001-01-01T00:00:00Z";

bool is_lag_condition(Condition c) {
  return c == Condition::lag_warning || c == Condition::lag_critical;
}

bool shows_lag(Condition c) {
  return is_lag_condition(c) || c == Condition::replica_disconnected ||
         c == Condition::replica_not_applying;
}

std::string upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Slack mrkdwn treats &, < and > as markup (links, mentions); everything else is literal.
std::string slack_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '&')
      out += "&amp;";
    else if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else
      out += c;
  }
  return out;
}

std::string lag_value(const AlertFacts& f) {
  std::string text;
  if (f.lag_seconds) text = format_lag(*f.lag_seconds);
  if (f.lag_bytes) {
    const std::string bytes = format_size(*f.lag_bytes);
    text = text.empty() ? bytes : text + " (" + bytes + ")";
  }
  return text.empty() ? "unknown" : text;
}

std::string threshold_value(const AlertFacts& f) {
  std::string text;
  if (f.threshold_seconds) text = format_lag(*f.threshold_seconds);
  if (f.threshold_bytes) text += (text.empty() ? "" : " / ") + format_size(*f.threshold_bytes);
  return text.empty() ? "none set" : text;
}

// "pg2", "db2 (channel east)" or "cluster orders": what an alert is about, in a sentence.
std::string subject(const AlertKey& key) {
  if (key.node.empty()) return "cluster " + key.cluster;
  return key.channel.empty() ? key.node : key.node + " (channel " + key.channel + ")";
}

std::string source(const AlertKey& key) {
  return key.node.empty() ? key.cluster : key.cluster + "/" + key.node;
}

bool is_firing(const Work& w) { return w.kind != WorkKind::resolve; }

std::string count_title(const std::vector<Work>& works) {
  const auto firing = std::count_if(works.begin(), works.end(), is_firing);
  const auto resolved = static_cast<std::ptrdiff_t>(works.size()) - firing;
  std::string title;
  if (firing > 0) title = "FIRING:" + std::to_string(firing);
  if (resolved > 0) title += (title.empty() ? "" : ", ") + ("RESOLVED:" + std::to_string(resolved));
  return "[" + title + "]";
}

// "CRITICAL lag_critical on pg2", "CRITICAL (still firing) …", "RESOLVED …".
std::string headline(const Work& w) {
  const Alert& a = w.alert;
  std::string status = w.kind == WorkKind::resolve ? "RESOLVED" : upper(severity_name(a.severity));
  if (w.kind == WorkKind::repeat) status += " (still firing)";
  return status + " " + std::string(condition_info(a.key.condition).name) + " on " + subject(a.key);
}

// The sentence under the headline: the summary, or for a resolve the last figures seen.
std::string body_line(const Work& w) {
  const Alert& a = w.alert;
  if (w.kind != WorkKind::resolve) return a.facts.summary;
  std::string text = "Last seen: " + a.facts.summary;
  if (!w.told_firing && a.firing_since)
    text += ". It fired at " + iso8601(*a.firing_since) +
            " but could not be delivered before it resolved.";
  return text;
}

std::string end_time(const Alert& a) { return a.resolved_at ? iso8601(*a.resolved_at) : kZeroTime; }

nlohmann::json labels(const Alert& a) {
  const ConditionInfo& info = condition_info(a.key.condition);
  nlohmann::json l = {{"alertname", info.alertname},
                      {"condition", info.name},
                      {"cluster", a.key.cluster},
                      {"severity", severity_name(a.severity)}};
  if (!a.key.node.empty()) l["node"] = a.key.node;
  if (!a.key.channel.empty()) l["channel"] = a.key.channel;
  if (!a.facts.engine.empty()) l["engine"] = a.facts.engine;
  return l;
}

std::string description(const Alert& a) {
  std::string text;
  for (const auto& [title, value] : alert_fields(a))
    text += (text.empty() ? "" : "; ") + title + ": " + value;
  return text;
}

nlohmann::json annotations(const Alert& a, const PayloadContext& context) {
  return {{"summary", a.facts.summary},
          {"description", description(a)},
          {"runbook_url", runbook_link(context, a.key.condition)},
          {"dedup_key", dedup_key(a.key)}};
}

// The figures of an alert as JSON values, for PagerDuty's custom_details.
nlohmann::json details(const Alert& a) {
  const ConditionInfo& info = condition_info(a.key.condition);
  const AlertFacts& f = a.facts;
  nlohmann::json d = {{"alertname", info.alertname},
                      {"condition", info.name},
                      {"cluster", a.key.cluster},
                      {"engine", f.engine},
                      {"state", f.state}};
  if (!a.key.node.empty()) d["node"] = a.key.node;
  if (!a.key.channel.empty()) d["channel"] = a.key.channel;
  const auto optional = [](const auto& value) {
    return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
  };
  if (shows_lag(a.key.condition)) {
    d["lag_seconds"] = optional(f.lag_seconds);
    d["lag_bytes"] = optional(f.lag_bytes);
    if (f.lag_from_engine) d["lag_from_engine"] = true;
  }
  if (is_lag_condition(a.key.condition)) {
    d["threshold_seconds"] = optional(f.threshold_seconds);
    d["threshold_bytes"] = optional(f.threshold_bytes);
  }
  switch (a.key.condition) {
    case Condition::node_down:
      d["reason"] = f.reason.empty() ? "unknown" : f.reason;
      break;
    case Condition::split_brain:
      d["primaries"] = f.primaries;
      d["primary_nodes"] = f.primary_nodes;
      break;
    case Condition::no_primary:
      d["primaries"] = f.primaries;
      break;
    case Condition::no_routable_replica:
      d["fallback"] = f.fallback;
      break;
    default:
      break;
  }
  if (a.firing_since) d["firing_since"] = iso8601(*a.firing_since);
  return d;
}

}  // namespace

std::string default_status_page_url(const std::string& listen, const std::string& hostname) {
  const std::size_t colon = listen.rfind(':');
  const std::string port = colon == std::string::npos ? "9817" : listen.substr(colon + 1);
  std::string host = colon == std::string::npos ? listen : listen.substr(0, colon);
  if (host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::")
    host = hostname.empty() ? "localhost" : hostname;
  return "http://" + host + ":" + port + "/";
}

std::string runbook_link(const PayloadContext& context, Condition condition) {
  return context.runbook_url + "#" + lower(condition_info(condition).alertname);
}

std::vector<std::pair<std::string, std::string>> alert_fields(const Alert& a) {
  const AlertFacts& f = a.facts;
  std::vector<std::pair<std::string, std::string>> fields = {{"Cluster", a.key.cluster}};
  if (!a.key.node.empty()) fields.emplace_back("Node", a.key.node);
  if (!a.key.channel.empty()) fields.emplace_back("Channel", a.key.channel);
  if (shows_lag(a.key.condition)) fields.emplace_back("Lag", lag_value(f));
  if (is_lag_condition(a.key.condition)) fields.emplace_back("Threshold", threshold_value(f));
  switch (a.key.condition) {
    case Condition::node_down:
      fields.emplace_back("Reason", f.reason.empty() ? "unknown" : f.reason);
      break;
    case Condition::split_brain: {
      std::string names;
      for (const auto& n : f.primary_nodes) names += (names.empty() ? "" : ", ") + n;
      fields.emplace_back("Primaries",
                          std::to_string(f.primaries) + (names.empty() ? "" : " (" + names + ")"));
      break;
    }
    case Condition::no_primary:
      fields.emplace_back("Primaries", std::to_string(f.primaries));
      break;
    case Condition::no_routable_replica:
      fields.emplace_back("Fallback", f.fallback);
      break;
    default:
      break;
  }
  fields.emplace_back("State", f.state);
  if (a.firing_since) fields.emplace_back("Since", iso8601(*a.firing_since));
  if (a.resolved_at) fields.emplace_back("Resolved", iso8601(*a.resolved_at));
  return fields;
}

nlohmann::json slack_message(const std::string& cluster, const std::vector<Work>& works,
                             const PayloadContext& context) {
  const std::string title = count_title(works) + " lagwatch: cluster " + cluster;
  std::string text = slack_escape(title);
  for (const Work& w : works) text += "\n• " + slack_escape(headline(w) + ": " + body_line(w));
  text += "\n<" + context.status_page_url + "|Status page>";

  nlohmann::json blocks = nlohmann::json::array();
  blocks.push_back(
      {{"type", "header"}, {"text", {{"type", "plain_text"}, {"text", title.substr(0, 150)}}}});
  for (std::size_t i = 0; i < works.size() && i < kSlackAlertsShown; ++i) {
    const Work& w = works[i];
    const Alert& a = w.alert;
    const char* icon = w.kind == WorkKind::resolve        ? ":large_green_circle:"
                       : a.severity == Severity::critical ? ":red_circle:"
                                                          : ":large_yellow_circle:";
    nlohmann::json fields = nlohmann::json::array();
    for (const auto& [name, value] : alert_fields(a))
      fields.push_back({{"type", "mrkdwn"}, {"text", "*" + name + "*\n" + slack_escape(value)}});
    blocks.push_back({{"type", "section"},
                      {"text",
                       {{"type", "mrkdwn"},
                        {"text", std::string(icon) + " *" + slack_escape(headline(w)) + "*\n" +
                                     slack_escape(body_line(w))}}},
                      {"fields", std::move(fields)}});
    blocks.push_back({{"type", "context"},
                      {"elements",
                       {{{"type", "mrkdwn"},
                         {"text", "<" + runbook_link(context, a.key.condition) + "|Runbook> · <" +
                                      context.status_page_url + "|Status page> · dedup_key `" +
                                      slack_escape(dedup_key(a.key)) + "`"}}}}});
  }
  if (works.size() > kSlackAlertsShown) {
    blocks.push_back(
        {{"type", "section"},
         {"text",
          {{"type", "mrkdwn"},
           {"text", "…and " + std::to_string(works.size() - kSlackAlertsShown) +
                        " more: see the <" + context.status_page_url + "|status page>"}}}});
  }
  return {{"text", text}, {"blocks", std::move(blocks)}};
}

nlohmann::json pagerduty_event(const Alert& a, bool trigger, const std::string& routing_key,
                               const PayloadContext& context) {
  nlohmann::json event = {{"routing_key", routing_key},
                          {"event_action", trigger ? "trigger" : "resolve"},
                          {"dedup_key", dedup_key(a.key)}};
  if (!trigger) return event;
  nlohmann::json payload = {{"summary", a.facts.summary.substr(0, kPagerDutySummaryMax)},
                            {"source", source(a.key)},
                            {"severity", severity_name(a.severity)},
                            {"timestamp", iso8601(a.firing_since.value_or(WallTime{}))},
                            {"group", a.key.cluster},
                            {"class", condition_info(a.key.condition).name},
                            {"custom_details", details(a)}};
  if (!a.key.node.empty()) payload["component"] = a.key.node;
  event["payload"] = std::move(payload);
  event["client"] = "lagwatch";
  event["client_url"] = context.status_page_url;
  event["links"] = {
      {{"href", context.status_page_url}, {"text", "lagwatch status page"}},
      {{"href", runbook_link(context, a.key.condition)},
       {"text", "Runbook: " + std::string(condition_info(a.key.condition).alertname)}}};
  return event;
}

nlohmann::json webhook_message(const std::string& cluster, const std::vector<Work>& works,
                               const PayloadContext& context) {
  nlohmann::json alerts = nlohmann::json::array();
  std::optional<nlohmann::json> common_labels, common_annotations;
  const auto intersect = [](std::optional<nlohmann::json>& common, const nlohmann::json& next) {
    if (!common) {
      common = next;
      return;
    }
    nlohmann::json kept = nlohmann::json::object();
    for (const auto& [k, v] : common->items())
      if (next.contains(k) && next.at(k) == v) kept[k] = v;
    common = std::move(kept);
  };
  for (const Work& w : works) {
    const Alert& a = w.alert;
    nlohmann::json l = labels(a);
    nlohmann::json n = annotations(a, context);
    intersect(common_labels, l);
    intersect(common_annotations, n);
    alerts.push_back({{"status", is_firing(w) ? "firing" : "resolved"},
                      {"labels", std::move(l)},
                      {"annotations", std::move(n)},
                      {"startsAt", iso8601(a.firing_since.value_or(WallTime{}))},
                      {"endsAt", is_firing(w) ? std::string(kZeroTime) : end_time(a)},
                      {"generatorURL", context.status_page_url},
                      {"fingerprint", alert_fingerprint(a.key)}});
  }
  const bool any_firing = std::any_of(works.begin(), works.end(), is_firing);
  return {{"version", "4"},
          {"groupKey", "lagwatch:" + cluster},
          {"truncatedAlerts", 0},
          {"status", any_firing ? "firing" : "resolved"},
          {"receiver", context.receiver},
          {"groupLabels", {{"cluster", cluster}}},
          {"commonLabels", common_labels.value_or(nlohmann::json::object())},
          {"commonAnnotations", common_annotations.value_or(nlohmann::json::object())},
          {"externalURL", context.status_page_url},
          {"alerts", std::move(alerts)}};
}

nlohmann::json alertmanager_alerts(const std::vector<Work>& works, const PayloadContext& context,
                                   WallTime now, Duration resend_interval) {
  nlohmann::json alerts = nlohmann::json::array();
  for (const Work& w : works) {
    const Alert& a = w.alert;
    const WallTime ends = is_firing(w) ? now + 4 * resend_interval : a.resolved_at.value_or(now);
    alerts.push_back({{"labels", labels(a)},
                      {"annotations", annotations(a, context)},
                      {"startsAt", iso8601(a.firing_since.value_or(now))},
                      {"endsAt", iso8601(std::chrono::time_point_cast<WallTime::duration>(ends))},
                      {"generatorURL", context.status_page_url}});
  }
  return alerts;
}

}  // namespace lagwatch
