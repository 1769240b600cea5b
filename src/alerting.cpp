// The notifier's pure core (see alerting.h): conditions from snapshots, and the alert state
// machine with its timers, inhibition, per-receiver bookkeeping and state document.
#include "alerting.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "api.h"

namespace lagwatch {

const char* severity_name(Severity severity) {
  return severity == Severity::warning ? "warning" : "critical";
}

std::optional<Severity> parse_severity(std::string_view name) {
  if (name == "warning") return Severity::warning;
  if (name == "critical") return Severity::critical;
  return std::nullopt;
}

std::optional<Condition> parse_condition(std::string_view name) {
  for (const auto& c : kConditions)
    if (c.name == name) return c.condition;
  return std::nullopt;
}

std::string dedup_key(const AlertKey& key) {
  std::string out = "lagwatch:" + key.cluster + ":";
  if (!key.node.empty()) {
    out += key.node;
    if (!key.channel.empty()) out += "/" + key.channel;
    out += ":";
  }
  return out + std::string(condition_info(key.condition).name);
}

std::string alert_fingerprint(const AlertKey& key) {
  const std::string text = dedup_key(key);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256 failed in OpenSSL");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < 8 && i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0xf];
  }
  return hex;
}

std::string format_lag(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) seconds = 0;
  if (seconds < 60) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.1fs", seconds);
    return buffer;
  }
  return format_duration(std::chrono::seconds(std::llround(seconds)));
}

std::string format_size(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(bytes) + "B";
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f%s", value, kUnits[unit]);
  std::string text = buffer;
  if (const auto dot = text.find(".0");
      dot != std::string::npos && !std::isdigit(static_cast<unsigned char>(text[dot + 2])))
    text.erase(dot, 2);  // "100MiB", not "100.0MiB"
  return text;
}

namespace {

bool is_replica_condition(Condition c) {
  return c == Condition::lag_warning || c == Condition::lag_critical ||
         c == Condition::replica_disconnected || c == Condition::replica_not_applying;
}

std::string replica_name(const std::string& cluster, const std::string& node,
                         const std::string& channel) {
  std::string name = cluster + "/" + node;
  if (!channel.empty()) name += " (channel " + channel + ")";
  return name;
}

std::string lag_text(const AlertFacts& f) {
  std::string text;
  if (f.lag_seconds) text = format_lag(*f.lag_seconds);
  if (f.lag_bytes) {
    const std::string bytes = format_size(*f.lag_bytes);
    text = text.empty() ? bytes : text + " (" + bytes + ")";
  }
  return text.empty() ? "an unknown amount" : text;
}

std::string threshold_text(const AlertFacts& f) {
  std::string text;
  if (f.threshold_seconds) text = format_lag(*f.threshold_seconds);
  if (f.threshold_bytes) text += (text.empty() ? "" : " / ") + format_size(*f.threshold_bytes);
  return text;
}

void add(ClusterObservations& out, Condition condition, const std::string& cluster,
         const std::string& node, const std::string& channel, AlertFacts facts) {
  out.active.push_back(Observation{AlertKey{condition, cluster, node, channel}, std::move(facts)});
}

// Whether a stream's lag is above a level (seconds or bytes): true when a known figure is
// above it (a lower bound above it too), false when the figures are known and below it, and
// nullopt when they cannot tell: lag_seconds is only a lower bound (the replayed position is
// older than the timeline's horizon, as in the first cycles after a start) or no figure the
// level applies to is known. replica_health() answers ok in those cases, which is right for
// routing but would resolve a firing alert only to page it again a few seconds later.
std::optional<bool> lag_above(const ChannelStatus& c, std::optional<double> seconds_level,
                              std::optional<Bytes> bytes_level) {
  const bool seconds_known = seconds_level && c.lag_seconds;
  const bool bytes_known = bytes_level && c.lag_bytes;
  if (seconds_known && *c.lag_seconds > *seconds_level) return true;
  if (bytes_known && *c.lag_bytes > bytes_level->value) return true;
  if (!seconds_level && !bytes_level) return false;
  if (seconds_known && c.lag_beyond_horizon) return std::nullopt;
  if (!seconds_known && !bytes_known) return std::nullopt;
  return false;
}

void observe_channel(ClusterObservations& out, const ClusterSnapshot& snap, const NodeStatus& node,
                     const ChannelStatus& channel) {
  AlertFacts base;
  base.engine = snap.engine;
  base.state = health_name(channel.state);
  base.lag_seconds = channel.lag_seconds;
  base.lag_bytes = channel.lag_bytes;
  base.lag_from_engine = channel.lag_from_engine && channel.lag_seconds.has_value();
  const std::string who = replica_name(snap.name, node.name, channel.name);

  const Thresholds& t = node.thresholds;
  const auto lag_alert = [&](Condition condition, std::optional<double> seconds_level,
                             std::optional<Bytes> bytes_level) {
    const std::optional<bool> above = lag_above(channel, seconds_level, bytes_level);
    if (!above) {
      out.undecided.insert(AlertKey{condition, snap.name, node.name, channel.name});
      return;
    }
    if (!*above) return;
    AlertFacts f = base;
    f.threshold_seconds = seconds_level;
    if (bytes_level) f.threshold_bytes = bytes_level->value;
    f.summary = "Replica " + who + " lags " + lag_text(f) + " behind its primary, above its " +
                severity_name(condition_info(condition).severity) + " threshold";
    if (const std::string levels = threshold_text(f); !levels.empty())
      f.summary += " (" + levels + ")";
    if (f.lag_from_engine) f.summary += "; engine's own figure, the primary could not be read";
    add(out, condition, snap.name, node.name, channel.name, std::move(f));
  };
  lag_alert(Condition::lag_warning, t.lag_seconds_warning, t.lag_bytes_warning);
  lag_alert(Condition::lag_critical, t.lag_seconds_critical, t.lag_bytes_critical);

  if (channel.connected && !*channel.connected) {
    AlertFacts f = base;
    f.summary = "Replica " + who + " is not receiving from its primary";
    add(out, Condition::replica_disconnected, snap.name, node.name, channel.name, std::move(f));
  }
  if (channel.applying && !*channel.applying) {
    AlertFacts f = base;
    f.summary = "Replica " + who + " is not applying changes (replay paused / SQL thread " +
                "stopped); lag " + lag_text(f);
    add(out, Condition::replica_not_applying, snap.name, node.name, channel.name, std::move(f));
  }
}

}  // namespace

ClusterObservations observe(const ClusterSnapshot& snap) {
  ClusterObservations out;
  out.cluster = snap.name;
  std::vector<std::string> primaries;
  for (const NodeStatus& node : snap.nodes) {
    out.nodes.insert(node.name);
    if (node.role == Role::primary && node.writable) primaries.push_back(node.name);
    if (!node.up) {
      out.unjudged.insert(node.name);
      AlertFacts f;
      f.engine = snap.engine;
      f.state = health_name(node.state);
      if (node.error != CollectionError::none) f.reason = error_reason(node.error);
      f.summary = "lagwatch cannot collect node " + snap.name + "/" + node.name;
      if (!f.reason.empty()) f.summary += " (" + f.reason + " error)";
      add(out, Condition::node_down, snap.name, node.name, "", std::move(f));
      continue;
    }
    if (!node.is_replica_side()) continue;
    for (const ChannelStatus& channel : node.channels) observe_channel(out, snap, node, channel);
  }

  AlertFacts cluster;
  cluster.engine = snap.engine;
  cluster.state = health_name(snap.state);
  cluster.primaries = snap.primaries;
  cluster.fallback = snap.list.fallback;
  if (snap.primaries > 1) {
    AlertFacts f = cluster;
    f.primary_nodes = primaries;
    std::string names;
    for (const auto& p : primaries) names += (names.empty() ? "" : ", ") + p;
    f.summary = "Split-brain: " + std::to_string(snap.primaries) +
                " writable primaries in cluster " + snap.name;
    if (!names.empty()) f.summary += " (" + names + ")";
    add(out, Condition::split_brain, snap.name, "", "", std::move(f));
  }
  if (snap.primaries == 0) {
    AlertFacts f = cluster;
    f.summary = "No writable primary in cluster " + snap.name;
    add(out, Condition::no_primary, snap.name, "", "", std::move(f));
  }
  // A one-node cluster has no replicas to route to: never an alert.
  if (snap.list.fallback == "primary" || (snap.list.replicas.empty() && snap.nodes.size() > 1)) {
    AlertFacts f = cluster;
    f.summary = "No replica of cluster " + snap.name + " is fit to serve reads";
    if (snap.list.fallback == "primary") f.summary += "; reads fall back to the primary";
    add(out, Condition::no_routable_replica, snap.name, "", "", std::move(f));
  }
  return out;
}

bool ReceiverRoute::wants(Condition condition) const {
  const Severity severity = condition_info(condition).severity;
  return (conditions.empty() ||
          std::find(conditions.begin(), conditions.end(), condition) != conditions.end()) &&
         (severities.empty() ||
          std::find(severities.begin(), severities.end(), severity) != severities.end());
}

std::vector<ReceiverRoute> receiver_routes(const AlertingConfig& config) {
  std::vector<ReceiverRoute> routes;
  for (const auto& r : config.receivers)
    routes.push_back(ReceiverRoute{r.name, r.conditions, r.severities,
                                   r.repeat_interval.value_or(config.repeat_interval)});
  return routes;
}

AlertTimers AlertTimers::from(const AlertingConfig& config) {
  return AlertTimers{config.group_wait, config.keep_firing_for, config.for_durations};
}

// ---- AlertBook ----------------------------------------------------------------------------

namespace {

// Whether a firing `source` silences `target` (see AlertBook).
bool inhibits(const AlertKey& source, const AlertKey& target) {
  if (source.cluster != target.cluster || source == target) return false;
  const bool per_node = condition_info(target.condition).per_node;
  switch (source.condition) {
    case Condition::node_down:
      return is_replica_condition(target.condition) && target.node == source.node;
    case Condition::split_brain:
      return per_node;
    case Condition::no_primary:
      return target.condition == Condition::replica_disconnected;
    case Condition::lag_critical:
      return target.condition == Condition::lag_warning && target.node == source.node &&
             target.channel == source.channel;
    default:
      return false;
  }
}

bool settled(const Alert::Delivery& d) {
  return d.owed.empty() && (d.told == Told::resolved || (d.told == Told::nothing && !d.due));
}

const char* told_name(Told told) {
  switch (told) {
    case Told::nothing:
      return "nothing";
    case Told::firing:
      return "firing";
    case Told::resolved:
      break;
  }
  return "resolved";
}

Told parse_told(const std::string& text) {
  if (text == "nothing") return Told::nothing;
  if (text == "firing") return Told::firing;
  if (text == "resolved") return Told::resolved;
  throw std::runtime_error("unknown \"told\" value \"" + text + "\"");
}

WallTime parse_time(const nlohmann::json& value, const char* what) {
  if (!value.is_string()) throw std::runtime_error(std::string(what) + " is not a time string");
  const std::string text = value.get<std::string>();
  std::tm tm{};
  int millis = 0;
  char zone = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &tm.tm_year, &tm.tm_mon,
                  &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &millis, &zone) != 8 ||
      zone != 'Z')
    throw std::runtime_error(std::string(what) + " \"" + text +
                             "\" is not like 2026-11-24T20:00:00.123Z");
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const std::time_t seconds = timegm(&tm);
  return WallTime{} + std::chrono::seconds(seconds) + std::chrono::milliseconds(millis);
}

template <typename T>
nlohmann::json optional_json(const std::optional<T>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

template <typename T>
std::optional<T> optional_from(const nlohmann::json& object, const char* key) {
  if (!object.contains(key) || object.at(key).is_null()) return std::nullopt;
  return object.at(key).get<T>();
}

nlohmann::json facts_json(const AlertFacts& f) {
  return {{"engine", f.engine},
          {"state", f.state},
          {"lag_seconds", optional_json(f.lag_seconds)},
          {"lag_bytes", optional_json(f.lag_bytes)},
          {"lag_from_engine", f.lag_from_engine},
          {"threshold_seconds", optional_json(f.threshold_seconds)},
          {"threshold_bytes", optional_json(f.threshold_bytes)},
          {"reason", f.reason},
          {"primaries", f.primaries},
          {"primary_nodes", f.primary_nodes},
          {"fallback", f.fallback},
          {"summary", f.summary}};
}

AlertFacts facts_from(const nlohmann::json& j) {
  AlertFacts f;
  f.engine = j.value("engine", "");
  f.state = j.value("state", "");
  f.lag_seconds = optional_from<double>(j, "lag_seconds");
  f.lag_bytes = optional_from<std::uint64_t>(j, "lag_bytes");
  f.lag_from_engine = j.value("lag_from_engine", false);
  f.threshold_seconds = optional_from<double>(j, "threshold_seconds");
  f.threshold_bytes = optional_from<std::uint64_t>(j, "threshold_bytes");
  f.reason = j.value("reason", "");
  f.primaries = j.value("primaries", 0);
  f.primary_nodes = j.value("primary_nodes", std::vector<std::string>{});
  f.fallback = j.value("fallback", "");
  f.summary = j.value("summary", "");
  return f;
}

}  // namespace

AlertBook::AlertBook(AlertTimers timers, std::vector<ReceiverRoute> routes)
    : timers_(timers), routes_(std::move(routes)) {}

const ReceiverRoute* AlertBook::route(const std::string& name) const {
  for (const auto& r : routes_)
    if (r.name == name) return &r;
  return nullptr;
}

void AlertBook::resolve(Alert& alert, WallTime now) {
  alert.resolved_at = now;
  alert.clear_since.reset();
  alert.saved_facts = alert.facts;
}

void AlertBook::owe(Alert::Delivery& d, const Alert& ended, bool told_firing) {
  d.owed.push_back({*ended.firing_since, *ended.resolved_at, ended.saved_facts, told_firing});
  if (d.owed.size() <= kMaxOwedEpisodes) return;
  // One firing from the start of the oldest to the end of the next: the receiver does not
  // hear that it resolved and fired again in between, and hears of all the rest.
  Alert::Episode& merged = d.owed[1];
  merged.firing_since = d.owed[0].firing_since;
  merged.told_firing = d.owed[0].told_firing;
  d.owed.erase(d.owed.begin());
  ++merged_episodes_;
}

void AlertBook::evaluate(const ClusterObservations& observations, WallTime now) {
  std::set<AlertKey> seen;
  for (const Observation& o : observations.active) {
    seen.insert(o.key);
    auto [it, inserted] = alerts_.try_emplace(o.key);
    Alert& a = it->second;
    if (inserted) {
      a.key = o.key;
      a.severity = condition_info(o.key.condition).severity;
    }
    a.facts = o.facts;
    if (!a.active_since) a.active_since = now;
    a.clear_since.reset();
    if (!a.firing() && now - *a.active_since >= for_duration(o.key.condition)) {
      // A new firing, which every receiver hears of after group_wait. One that has not yet
      // heard the previous firing's end (or of it at all) is owed that first.
      if (a.firing_since && a.resolved_at)
        for (auto& [name, d] : a.receivers)
          if (d.due && d.told != Told::resolved) owe(d, a, d.told == Told::firing);
      for (auto& [name, d] : a.receivers) {
        d.due = false;
        d.told = Told::nothing;
      }
      a.firing_since = now;
      a.resolved_at.reset();
      a.saved_facts = a.facts;
    }
  }

  for (auto& [key, a] : alerts_) {
    if (key.cluster != observations.cluster || seen.count(key)) continue;
    const bool node_gone =
        condition_info(key.condition).per_node && !observations.nodes.count(key.node);
    if (!node_gone &&
        ((is_replica_condition(key.condition) && observations.unjudged.count(key.node)) ||
         observations.undecided.count(key))) {
      // Down node or undecidable figures: a firing alert stays firing (a down node's
      // node_down inhibits it meanwhile); a pending one starts over once it can be judged.
      if (!a.firing()) a.active_since.reset();
      continue;
    }
    a.active_since.reset();
    if (!a.firing()) continue;
    if (!a.clear_since) a.clear_since = now;
    if (node_gone || now - *a.clear_since >= timers_.keep_firing_for) resolve(a, now);
  }

  update_inhibition(observations.cluster);

  // group_wait per (receiver, cluster), as Alertmanager's: the alerts this receiver has not
  // been made due for yet form one group, which falls due group_wait after the earliest of
  // them fired, all together, so what fires within group_wait of it goes out in one message.
  for (const auto& r : routes_) {
    std::vector<Alert*> group;
    std::optional<WallTime> first_fired;
    for (auto& [key, a] : alerts_) {
      if (key.cluster != observations.cluster || !a.firing() || a.inhibited ||
          !r.wants(key.condition))
        continue;
      const auto d = a.receivers.find(r.name);
      if (d != a.receivers.end() && d->second.due) continue;
      group.push_back(&a);
      if (!first_fired || *a.firing_since < *first_fired) first_fired = a.firing_since;
    }
    if (group.empty() || now < *first_fired + timers_.group_wait) continue;
    for (Alert* a : group) a->receivers[r.name].due = true;
  }
  collect_garbage();
}

void AlertBook::update_inhibition(const std::string& cluster) {
  std::vector<const AlertKey*> sources;
  for (const auto& [key, a] : alerts_)
    if (key.cluster == cluster && a.firing()) sources.push_back(&key);
  for (auto& [key, a] : alerts_) {
    if (key.cluster != cluster) continue;
    const AlertKey& target = key;  // clang 14 (the fuzz build) cannot capture a binding
    a.inhibited = std::any_of(sources.begin(), sources.end(),
                              [&](const AlertKey* source) { return inhibits(*source, target); });
  }
}

void AlertBook::forget_unconfigured(const std::map<std::string, std::set<std::string>>& configured,
                                    WallTime now) {
  for (auto& [key, a] : alerts_) {
    const auto cluster = configured.find(key.cluster);
    const bool gone = cluster == configured.end() ||
                      (condition_info(key.condition).per_node && !cluster->second.count(key.node));
    if (!gone) continue;
    a.active_since.reset();
    if (a.firing()) resolve(a, now);
  }
  collect_garbage();
}

void AlertBook::collect_garbage() {
  std::erase_if(alerts_, [](const auto& entry) {
    const Alert& a = entry.second;
    return !a.active_since && !a.firing() &&
           std::all_of(a.receivers.begin(), a.receivers.end(),
                       [](const auto& r) { return settled(r.second); });
  });
}

std::vector<Work> AlertBook::pending(const std::string& receiver, WallTime now) const {
  std::vector<Work> work;
  const ReceiverRoute* r = route(receiver);
  if (r == nullptr) return work;
  for (const auto& [key, a] : alerts_) {
    const auto it = a.receivers.find(receiver);
    if (it == a.receivers.end()) continue;
    const Alert::Delivery& d = it->second;
    for (const Alert::Episode& e : d.owed) {
      Work w{WorkKind::resolve, e.told_firing, a, true};
      w.alert.firing_since = e.firing_since;
      w.alert.resolved_at = e.resolved_at;
      w.alert.facts = w.alert.saved_facts = e.facts;
      work.push_back(std::move(w));
    }
    if (!d.due) continue;
    if (a.firing()) {
      if (d.told != Told::firing)
        work.push_back(Work{WorkKind::trigger, false, a});
      else if (!a.inhibited && now >= d.told_at + r->repeat_interval)
        work.push_back(Work{WorkKind::repeat, true, a});
    } else if (a.resolved_at && d.told != Told::resolved) {
      work.push_back(Work{WorkKind::resolve, d.told == Told::firing, a});
    }
  }
  return work;
}

std::optional<WallTime> AlertBook::next_repeat(const std::string& receiver) const {
  const ReceiverRoute* r = route(receiver);
  if (r == nullptr) return std::nullopt;
  std::optional<WallTime> next;
  for (const auto& [key, a] : alerts_) {
    const auto it = a.receivers.find(receiver);
    if (it == a.receivers.end() || !a.firing() || a.inhibited || !it->second.due ||
        it->second.told != Told::firing)
      continue;
    const WallTime at = it->second.told_at + r->repeat_interval;
    if (!next || at < *next) next = at;
  }
  return next;
}

void AlertBook::told(const std::string& receiver, const Work& work, Told told, WallTime now) {
  auto it = alerts_.find(work.alert.key);
  if (work.owed_episode) {
    // An alert with an owed episode is not dropped, and only told() takes episodes away.
    if (it == alerts_.end()) return;
    auto& owed = it->second.receivers[receiver].owed;
    const auto e = std::find_if(owed.begin(), owed.end(), [&](const Alert::Episode& e) {
      return e.firing_since == work.alert.firing_since;
    });
    if (e == owed.end()) return;  // merged into an earlier one meanwhile: that one is owed
    if (told == Told::firing)
      e->told_firing = true;  // PagerDuty was triggered with it: the resolve comes next
    else
      owed.erase(e);
    collect_garbage();
    return;
  }
  if (it == alerts_.end()) {
    // Settled and dropped while this was in flight; a firing it now believes in must still
    // be resolved, so bring the alert back as a resolve owed to this receiver.
    if (told != Told::firing) return;
    Alert stub = work.alert;
    stub.active_since.reset();
    stub.clear_since.reset();
    if (!stub.resolved_at) stub.resolved_at = now;
    stub.receivers.clear();
    it = alerts_.emplace(stub.key, std::move(stub)).first;
  }
  Alert::Delivery& d = it->second.receivers[receiver];
  d.told = told;
  if (told == Told::firing) {
    d.due = true;  // it knows of a firing now, so it is owed the resolve
    d.told_at = now;
  }
  collect_garbage();
}

nlohmann::json AlertBook::save() const {
  nlohmann::json alerts = nlohmann::json::array();
  for (const auto& [key, a] : alerts_) {
    if (!a.firing_since) continue;  // pending: starts over after a restart
    nlohmann::json receivers = nlohmann::json::object();
    for (const auto& [name, d] : a.receivers) {
      nlohmann::json owed = nlohmann::json::array();
      for (const Alert::Episode& e : d.owed)
        owed.push_back({{"firing_since", iso8601(e.firing_since)},
                        {"resolved_at", iso8601(e.resolved_at)},
                        {"facts", facts_json(e.facts)},
                        {"told_firing", e.told_firing}});
      receivers[name] = {{"due", d.due},
                         {"told", told_name(d.told)},
                         {"told_at", d.told == Told::nothing ? nlohmann::json(nullptr)
                                                             : nlohmann::json(iso8601(d.told_at))},
                         {"owed", std::move(owed)}};
    }
    alerts.push_back({{"dedup_key", dedup_key(key)},
                      {"condition", condition_info(key.condition).name},
                      {"cluster", key.cluster},
                      {"node", key.node},
                      {"channel", key.channel},
                      {"severity", severity_name(a.severity)},
                      {"firing_since", iso8601(*a.firing_since)},
                      {"resolved_at", a.resolved_at ? nlohmann::json(iso8601(*a.resolved_at))
                                                    : nlohmann::json(nullptr)},
                      {"facts", facts_json(a.saved_facts)},
                      {"receivers", std::move(receivers)}});
  }
  return {{"version", 1}, {"alerts", std::move(alerts)}};
}

void AlertBook::restore(const nlohmann::json& state) {
  try {
    if (!state.is_object() || state.value("version", 0) != 1)
      throw std::runtime_error("not a version 1 lagwatch alert state");
    std::map<AlertKey, Alert> loaded;
    for (const auto& j : state.at("alerts")) {
      Alert a;
      const std::string condition = j.at("condition").get<std::string>();
      const std::optional<Condition> c = parse_condition(condition);
      if (!c) throw std::runtime_error("unknown condition \"" + condition + "\"");
      a.key = AlertKey{*c, j.at("cluster").get<std::string>(), j.value("node", ""),
                       j.value("channel", "")};
      a.severity = condition_info(*c).severity;
      a.firing_since = parse_time(j.at("firing_since"), "firing_since");
      if (!j.at("resolved_at").is_null())
        a.resolved_at = parse_time(j.at("resolved_at"), "resolved_at");
      // Still firing as far as we know: the first evaluation decides, without a new `for`.
      if (!a.resolved_at) a.active_since = a.firing_since;
      a.saved_facts = a.facts = facts_from(j.at("facts"));
      for (const auto& [name, r] : j.at("receivers").items()) {
        if (route(name) == nullptr) continue;  // receiver removed from the config
        Alert::Delivery d;
        d.due = r.at("due").get<bool>();
        d.told = parse_told(r.at("told").get<std::string>());
        if (d.told != Told::nothing) d.told_at = parse_time(r.at("told_at"), "told_at");
        for (const auto& e : r.value("owed", nlohmann::json::array()))
          d.owed.push_back({parse_time(e.at("firing_since"), "firing_since"),
                            parse_time(e.at("resolved_at"), "resolved_at"),
                            facts_from(e.at("facts")), e.at("told_firing").get<bool>()});
        a.receivers[name] = d;
      }
      const AlertKey key = a.key;
      loaded[key] = std::move(a);
    }
    alerts_ = std::move(loaded);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(e.what());
  }
  collect_garbage();
}

}  // namespace lagwatch
