// The built-in notifier (design §6, docs/alerting.md): evaluates every published snapshot into
// alerts (alerting.h) on its own thread, delivers them through one worker per receiver with
// retries, backoff and rate limits, and keeps alert state on disk across restarts.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <set>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "alerting.h"
#include "clock.h"
#include "config.h"
#include "http_client.h"
#include "snapshot.h"

namespace lagwatch {

using SteadyTime = std::chrono::steady_clock::time_point;

// A token bucket: `burst` sends at once, then `per_second`. Thread-safe; shared by receivers
// that post to the same Slack webhook or PagerDuty routing key, whose limits are per URL/key.
class RateLimiter {
 public:
  RateLimiter(double per_second, double burst);
  // Spends a token and returns `now` when one is there; otherwise spends nothing and returns
  // when one will be. Check and spend are one step, so receivers sharing the bucket cannot
  // both pass on the last token: this is what senders call.
  SteadyTime acquire(SteadyTime now);
  // When the next send may go: `now` when a token is there.
  SteadyTime available_at(SteadyTime now) const;
  // Spends a token unconditionally (the bucket may go below zero; later sends then wait
  // longer). available_at() then take() is not atomic: two senders may both pass.
  void take(SteadyTime now);

 private:
  void refill(SteadyTime now) const;
  mutable std::mutex mutex_;
  double per_second_;
  double burst_;
  mutable double tokens_;
  mutable SteadyTime updated_{};
};

// Slack: about one message per second per webhook (short bursts allowed).
inline constexpr double kSlackPerSecond = 1.0;
inline constexpr double kSlackBurst = 1.0;
// PagerDuty: 120 events per minute per routing key; a burst of 20 plus 100/min never passes
// 120 in any minute.
inline constexpr double kPagerDutyPerSecond = 100.0 / 60.0;
inline constexpr double kPagerDutyBurst = 20.0;

// Retries of 5xx, 408, 429 and network errors: full-jitter exponential backoff (http_client.h)
// from kNotifyBackoffBase up to kNotifyBackoffCap, Retry-After honoured up to
// kNotifyRetryAfterCap. Never given up: a resolve owed is owed until it is delivered.
inline constexpr Duration kNotifyBackoffBase = std::chrono::milliseconds(500);
inline constexpr Duration kNotifyBackoffCap = std::chrono::minutes(2);
inline constexpr Duration kNotifyRetryAfterCap = std::chrono::minutes(10);

// Writes `contents` to `path` so that a crash leaves either the old file or the new one:
// a temporary file in the same directory, fsync, rename over `path`, fsync of the directory.
// Throws std::runtime_error("cannot write <path>: <why>").
void write_file_atomically(const std::string& path, const std::string& contents);

class Notifier : public prometheus::Collectable {
 public:
  // Loads config.state_file (missing: nothing fired yet; unreadable or corrupt: moved aside to
  // "<state_file>.corrupt", logged, started empty), resolves the alerts of clusters and nodes
  // no longer in `clusters`, writes the state back (so an unwritable state_file fails at
  // start), then starts the evaluator thread and one worker per receiver.
  // config.status_page_url must be set. `clock` must outlive the notifier. Throws
  // std::runtime_error.
  Notifier(AlertingConfig config, const std::vector<ClusterConfig>& clusters, const Clock& clock);
  ~Notifier() override;  // stop()s
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // SnapshotStore subscriber: keeps `snapshot` as its cluster's latest and wakes the evaluator.
  // Never waits on I/O.
  void on_publish(const std::shared_ptr<const ClusterSnapshot>& snapshot);

  // After a reload, the clusters now watched: the alerts of clusters and nodes no longer among
  // them resolve at once (receivers told of them get the resolve; nothing stays firing for a
  // cluster nobody watches), and their snapshots still on the way are ignored.
  void on_clusters_changed(const std::vector<ClusterConfig>& clusters);

  // Stops and joins every thread, aborting requests in flight. State on disk is already
  // current. Idempotent.
  void stop();

  // lagwatch_notifications_total{receiver,result}, lagwatch_alerts_firing{cluster,condition,
  // severity}, lagwatch_alert_state_write_failures_total.
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  struct Receiver;
  // Sets clusters_ and configured_ from the clusters watched; call with mutex_ held (or from
  // the constructor).
  void watch(const std::vector<ClusterConfig>& clusters);
  void evaluate_loop();
  void deliver_loop(Receiver& receiver);
  // Serialises the book; call with mutex_ held. Returns what persist() writes.
  std::pair<std::uint64_t, std::string> snapshot_state();
  // Writes a serialised state unless a newer one was written already. Call without mutex_.
  void persist(const std::pair<std::uint64_t, std::string>& state);

  AlertingConfig config_;
  std::vector<std::string> clusters_;  // in config order (the latest reload's); guarded by mutex_
  // The nodes of each cluster watched (the config's, after a reload the new one's); guarded by
  // mutex_. Snapshots of other clusters are not evaluated.
  std::map<std::string, std::set<std::string>> configured_;
  const Clock& clock_;
  HttpClientLibrary library_;
  std::atomic<bool> stopping_{false};

  mutable std::mutex mutex_;  // guards book_, inbox_, the receivers' backoff state, save_seq_
  AlertBook book_;
  std::map<std::string, std::shared_ptr<const ClusterSnapshot>> inbox_;  // not yet evaluated
  std::condition_variable evaluate_wake_;
  std::uint64_t save_seq_ = 0;

  std::mutex write_mutex_;  // one writer of the state file at a time
  std::uint64_t written_seq_ = 0;
  std::string written_;  // what the file holds, to skip identical writes
  std::atomic<std::uint64_t> write_failures_{0};

  std::vector<std::unique_ptr<Receiver>> receivers_;
  std::thread evaluator_;
};

}  // namespace lagwatch
