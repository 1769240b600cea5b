// The built-in notifier's pure core (design §6): which conditions a cluster snapshot shows, and
// the alert state machine over them — `for`, group_wait, repeat_interval, keep_firing_for,
// inhibition, and what each receiver has been told. No I/O and no clock of its own: the caller
// passes `now`, so every timer is tested with a fake clock.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "alerting_conditions.h"
#include "clock.h"
#include "config.h"
#include "snapshot.h"

namespace lagwatch {

// An alert's identity: one per condition and cluster, and per node (and MySQL channel) for
// per-node conditions. Two lagwatch instances watching the same cluster derive the same keys.
struct AlertKey {
  Condition condition = Condition::lag_warning;
  std::string cluster;
  std::string node;     // "" for cluster conditions
  std::string channel;  // "" for PostgreSQL, MySQL's default channel and cluster conditions
  bool operator==(const AlertKey&) const = default;
  // Cluster first, then node: so a sorted walk meets one cluster's alerts together.
  auto operator<=>(const AlertKey& o) const {
    return std::tie(cluster, node, channel, condition) <=>
           std::tie(o.cluster, o.node, o.channel, o.condition);
  }
};

// "lagwatch:<cluster>:<node>:<condition>" ("lagwatch:<cluster>:<node>/<channel>:<condition>"
// for a named channel, "lagwatch:<cluster>:<condition>" for cluster conditions): PagerDuty's
// dedup_key. Plain text rather than a hash, so an operator can read it and HA pairs agree.
std::string dedup_key(const AlertKey& key);
// First 16 hex digits of SHA-256(dedup_key): the webhook's Alertmanager-style fingerprint.
std::string alert_fingerprint(const AlertKey& key);

// The figures behind an alert as of the last evaluation that found its condition true: what
// messages show. Snapshot figures only; nothing here is measured again.
struct AlertFacts {
  std::string engine;
  std::string state;  // the channel's, node's or cluster's health ("critical", "unknown", …)
  std::optional<double> lag_seconds;
  std::optional<std::uint64_t> lag_bytes;
  bool lag_from_engine = false;  // lag_seconds is the engine's own figure (no primary sampled)
  // The thresholds of the alert's severity (lag conditions only).
  std::optional<double> threshold_seconds;
  std::optional<std::uint64_t> threshold_bytes;
  std::string reason;                      // node_down: timeout, connect, auth or query
  int primaries = 0;                       // cluster conditions
  std::vector<std::string> primary_nodes;  // split_brain: the writable primaries
  std::string fallback;                    // no_routable_replica: the list's fallback
  std::string summary;                     // one line saying all of the above
  bool operator==(const AlertFacts&) const = default;
};

struct Observation {
  AlertKey key;
  AlertFacts facts;
};

// What one snapshot of a cluster shows.
struct ClusterObservations {
  std::string cluster;
  std::vector<Observation> active;  // conditions true now
  std::set<std::string> nodes;      // every node of the snapshot
  // Nodes lagwatch could not collect: their replica conditions (lag, disconnected, not
  // applying) can be judged neither true nor false, so alerts on them keep their state.
  std::set<std::string> unjudged;
  // Lag conditions the figures cannot decide this cycle, e.g. just after a start, when the
  // position timeline is younger than the replica's lag and lag_seconds is only a lower bound
  // below the level. Alerts on them keep their state too (rather than resolve and re-page).
  std::set<AlertKey> undecided;
};
ClusterObservations observe(const ClusterSnapshot& snapshot);

// "12.3s", "2m5s"; "1.5MiB", "512B": how lag is written in messages.
std::string format_lag(double seconds);
std::string format_size(std::uint64_t bytes);

// Which alerts a receiver gets, and how often it is reminded.
struct ReceiverRoute {
  std::string name;
  std::vector<Condition> conditions;  // empty: all
  std::vector<Severity> severities;   // empty: all
  Duration repeat_interval = std::chrono::hours(4);
  bool wants(Condition condition) const;
};
std::vector<ReceiverRoute> receiver_routes(const AlertingConfig& config);

struct AlertTimers {
  Duration group_wait = std::chrono::seconds(10);
  Duration keep_firing_for = Duration::zero();
  std::array<Duration, kConditions.size()> for_durations{};
  static AlertTimers from(const AlertingConfig& config);
};

// What a receiver was last told of an alert.
enum class Told { nothing, firing, resolved };

struct Alert {
  AlertKey key;
  Severity severity = Severity::critical;
  // The condition has held since (pending, then firing); unset while it does not hold.
  std::optional<WallTime> active_since;
  std::optional<WallTime> firing_since;  // when `for` elapsed: start of the current/last firing
  std::optional<WallTime> clear_since;   // firing, but the condition has not held since
  std::optional<WallTime> resolved_at;   // end of the last firing; unset while firing
  bool inhibited = false;                // a firing alert that silences this one (see below)
  AlertFacts facts;                      // latest
  AlertFacts saved_facts;  // as of the last firing/resolving: what the state file keeps

  // A firing that is over, kept for a receiver that has not heard its end: it was due to hear
  // of it, the alert resolved and fired again before the resolve could be delivered (the
  // receiver hung or was down), so it is told of this one's end before of the new firing.
  struct Episode {
    WallTime firing_since{};
    WallTime resolved_at{};
    AlertFacts facts;
    bool told_firing = false;  // the receiver heard it fire
  };
  struct Delivery {
    bool due = false;  // this receiver is to hear of the current (or last) firing
    Told told = Told::nothing;
    WallTime told_at{};  // when it was last told (repeat_interval counts from here)
    // Earlier firings whose end it still owes this receiver, oldest first; at most
    // kMaxOwedEpisodes (past that, the two oldest are merged into one).
    std::vector<Episode> owed;
  };
  std::map<std::string, Delivery> receivers;  // by receiver name

  bool firing() const { return firing_since && !resolved_at; }
};

// What a receiver is to be sent about one alert now.
enum class WorkKind {
  trigger,  // a firing it has not heard of
  repeat,   // still firing, repeat_interval after it was last told
  resolve,  // the firing it was told of (or, with `told_firing` false, one it never heard of
            // because delivery failed until it had resolved) is over
};
struct Work {
  WorkKind kind = WorkKind::trigger;
  bool told_firing = true;  // resolve only: the receiver was told it fired
  Alert alert;  // a copy as of when the work was taken; for an owed episode, as of its end
  bool owed_episode = false;  // the resolve of an earlier firing (Alert::Delivery::owed)
};

// How many ended firings of one alert a receiver that cannot be reached is owed at most, so
// an alert flapping through a long outage holds bounded memory.
inline constexpr std::size_t kMaxOwedEpisodes = 16;

// Every alert of every cluster, and what each receiver has been told. Not thread-safe.
//
// An alert is pending while its condition holds for less than its `for`, then firing. Firing,
// not inhibited alerts of one cluster that a receiver (wanting their condition and severity)
// has not been made due for form that receiver's group for the cluster; the group falls due
// as a whole once its earliest alert has fired for group_wait (Alertmanager's group_wait), so
// what fires within group_wait of the first goes out together. Due alerts are triggered,
// repeated every repeat_interval while firing and not inhibited, and resolved once their
// condition has not held for keep_firing_for. An alert that resolves before it is due reaches
// nobody. Inhibition: a firing
// node_down silences its node's lag, disconnected and not-applying alerts; a firing
// split_brain silences every per-node alert of its cluster; a firing no_primary silences the
// cluster's replica_disconnected alerts; a firing lag_critical silences the lag_warning of the
// same replica stream. Inhibited alerts are neither triggered nor repeated, but a resolve owed
// is still sent. Every firing a receiver was due to hear of reaches it, with its end, also
// when the alert fires again before that end was delivered (Alert::Delivery::owed).
class AlertBook {
 public:
  AlertBook(AlertTimers timers, std::vector<ReceiverRoute> routes);

  // Advances every alert of `observations.cluster` to `now`.
  void evaluate(const ClusterObservations& observations, WallTime now);
  void evaluate(const ClusterSnapshot& snapshot, WallTime now) { evaluate(observe(snapshot), now); }
  // Resolves at once the alerts of clusters and nodes no longer configured: `configured` maps
  // each cluster to its nodes. Called at start, after restore().
  void forget_unconfigured(const std::map<std::string, std::set<std::string>>& configured,
                           WallTime now);

  // What `receiver` is to be sent at `now`, in key order (so grouped by cluster).
  std::vector<Work> pending(const std::string& receiver, WallTime now) const;
  // The earliest time after `now` at which pending(receiver) grows without an evaluation
  // (a repeat falling due); nullopt when none will.
  std::optional<WallTime> next_repeat(const std::string& receiver) const;
  // Records that `receiver` was told `told` about `work.alert` at `now` (or refused it for
  // good: that settles it too).
  void told(const std::string& receiver, const Work& work, Told told, WallTime now);

  const std::map<AlertKey, Alert>& alerts() const { return alerts_; }
  // How many times two owed episodes were merged into one since the start (a receiver out
  // through more than kMaxOwedEpisodes firings of one alert): transitions it will not hear.
  std::uint64_t merged_episodes() const { return merged_episodes_; }

  // The state file's contents (docs/alerting.md): firing alerts and resolves still owed, with
  // what each receiver was told. No pending alerts, no secrets: receivers by name.
  nlohmann::json save() const;
  // Loads save()'s output; alerts for receivers not in the routes forget those receivers.
  // Throws std::runtime_error saying what is wrong with the document.
  void restore(const nlohmann::json& state);

 private:
  Duration for_duration(Condition condition) const {
    return timers_.for_durations[static_cast<std::size_t>(condition)];
  }
  const ReceiverRoute* route(const std::string& name) const;
  void update_inhibition(const std::string& cluster);
  void resolve(Alert& alert, WallTime now);
  // Keeps `ended`'s last firing, which `d`'s receiver has not heard the end of.
  void owe(Alert::Delivery& d, const Alert& ended, bool told_firing);
  void collect_garbage();

  AlertTimers timers_;
  std::vector<ReceiverRoute> routes_;
  std::map<AlertKey, Alert> alerts_;
  std::uint64_t merged_episodes_ = 0;
};

}  // namespace lagwatch
