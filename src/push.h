// Router pushes (design §4 [[routing.push]], §5): sends each cluster's replica list to every
// configured router on change and every keepalive, signed, retried with backoff, latest wins.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "clock.h"
#include "config.h"
#include "snapshot.h"
#include "units.h"

namespace lagwatch {

// Lowercase hex HMAC-SHA256 of `data` under `key` (RFC 2104 / RFC 4231).
std::string hmac_sha256_hex(const std::string& key, const std::string& data);

// The X-Lagwatch-Signature header value: "sha256=" + hmac_sha256_hex(secret,
// timestamp + "." + body). Signing the timestamp with the body lets a router refuse a
// captured push replayed later (docs/push.md).
std::string sign_push(const std::string& secret, const std::string& timestamp,
                      const std::string& body);

// One push as sent: the replica list body of design §5 and the headers that go with it
// ("Name: value"): Content-Type, X-Lagwatch-Cluster, X-Lagwatch-Generation,
// X-Lagwatch-Timestamp (unix seconds of `now`) and, when there is a secret,
// X-Lagwatch-Signature.
struct PushRequest {
  std::string body;
  std::vector<std::string> headers;
};
PushRequest build_push(const ClusterSnapshot& snapshot, const std::optional<Secret>& secret,
                       WallTime now);

// How one delivery attempt ended, from the HTTP status (0: no answer: connect error, timeout,
// reset).
enum class PushOutcome {
  success,    // 2xx
  retry,      // no answer, 408, 429 or 5xx: the router may take it later
  permanent,  // any other status: this body will not be accepted; wait for a change/keepalive
};
PushOutcome classify_push_status(long http_status);

// Exponential backoff with full jitter before retry number `failures` (1 after the first
// failed attempt): a uniform pick in [0, min(kPushBackoffCap, kPushBackoffBase * 2^(failures-1))),
// `jitter` in [0, 1) being the pick. A router's Retry-After raises the wait to at least
// that long (capped at kPushRetryAfterCap so a bogus header cannot silence a router for days).
inline constexpr Duration kPushBackoffBase = std::chrono::milliseconds(250);
inline constexpr Duration kPushBackoffCap = std::chrono::seconds(30);
inline constexpr Duration kPushRetryAfterCap = std::chrono::minutes(5);
Duration push_backoff(int failures, std::optional<Duration> retry_after, double jitter);

// Pushes replica lists to the [[routing.push]] targets. One worker thread and one libcurl
// handle (kept alive between pushes) per target, so a dead or slow router delays nobody else.
//
// For each (target, cluster) at most one body is pending: the latest snapshot. A target is
// sent a cluster's list when its generation differs from the last one that target settled
// (delivered, or refused with a permanent 4xx), and the latest list again every `keepalive`
// after the last attempt. Failures that may pass (no answer, 408, 429, 5xx) are retried after
// push_backoff(); a list published meanwhile replaces the one being retried.
//
// Counts every attempt in lagwatch_router_pushes_total{router,result} (success, retry,
// failure). Logs and metrics name a router by its `name`, never its URL or secret.
class RouterPusher : public prometheus::Collectable {
 public:
  // Starts one worker thread per target. `clock` stamps X-Lagwatch-Timestamp and must
  // outlive the pusher.
  RouterPusher(std::vector<RoutingPush> targets, const Clock& clock);
  ~RouterPusher() override;  // stop()s
  RouterPusher(const RouterPusher&) = delete;
  RouterPusher& operator=(const RouterPusher&) = delete;

  // SnapshotStore subscriber: records `snapshot` as the latest of its cluster for every
  // target and wakes the workers. Takes a mutex per target briefly; never waits on I/O.
  void on_publish(const std::shared_ptr<const ClusterSnapshot>& snapshot);

  // Wakes every worker, aborts transfers in flight and joins the threads (within about a
  // second: libcurl's progress callback is the abort point). Pending lists are dropped.
  // Idempotent.
  void stop();

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  struct Target;
  void run(Target& target);

  const Clock& clock_;
  std::atomic<bool> stopping_{false};
  std::vector<std::unique_ptr<Target>> targets_;
};

}  // namespace lagwatch
