// Router pushes (see push.h): per-target worker threads around the shared HttpClient; signing
// and the push's views of retry classification and backoff are pure functions above them.
#include "push.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <system_error>
#include <thread>

#include "api.h"
#include "http_client.h"

namespace lagwatch {

std::string hmac_sha256_hex(const std::string& key, const std::string& data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int length = 0;
  // OpenSSL reads a zero-length key through the pointer anyway; give it a valid one.
  static const unsigned char kNoKey = 0;
  const void* key_data = key.empty() ? &kNoKey : static_cast<const void*>(key.data());
  if (HMAC(EVP_sha256(), key_data, static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac.data(),
           &length) == nullptr) {
    // Only on allocation failure or a broken OpenSSL; an unsigned push would be refused anyway.
    throw std::runtime_error("HMAC-SHA256 failed in OpenSSL");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(std::size_t{length} * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[mac[i] >> 4];
    hex += kHex[mac[i] & 0xf];
  }
  return hex;
}

std::string sign_push(const std::string& secret, const std::string& timestamp,
                      const std::string& body) {
  return "sha256=" + hmac_sha256_hex(secret, timestamp + "." + body);
}

PushOutcome classify_push_status(long http_status) {
  switch (classify_http_status(http_status)) {
    case HttpOutcome::success:
      return PushOutcome::success;
    case HttpOutcome::retry:
      return PushOutcome::retry;
    case HttpOutcome::permanent:
      break;
  }
  return PushOutcome::permanent;
}

PushRequest build_push(const ClusterSnapshot& snapshot, const std::optional<Secret>& secret,
                       WallTime now) {
  PushRequest request;
  // Invalid UTF-8 from a database string is replaced rather than thrown on in a worker thread.
  request.body = replica_list_json(snapshot, snapshot.list)
                     .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const std::string timestamp = std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
  request.headers = {
      "Content-Type: application/json",
      "X-Lagwatch-Cluster: " + snapshot.name,
      "X-Lagwatch-Generation: " + std::to_string(snapshot.list.generation),
      "X-Lagwatch-Timestamp: " + timestamp,
  };
  if (secret)
    request.headers.push_back("X-Lagwatch-Signature: " +
                              sign_push(secret->value, timestamp, request.body));
  return request;
}

Duration push_backoff(int failures, std::optional<Duration> retry_after, double jitter) {
  return retry_backoff(failures, retry_after, jitter, kPushBackoffBase, kPushBackoffCap,
                       kPushRetryAfterCap);
}

namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

// The status of an attempt that never left because its request could not be built.
constexpr long kNotSent = -1;

}  // namespace

struct RouterPusher::Target {
  // What this target has pending or settled for one cluster. Guarded by `mutex`.
  struct Slot {
    std::shared_ptr<const ClusterSnapshot> latest;
    bool settled = false;  // the router took (or permanently refused) settled_generation
    std::uint64_t settled_generation = 0;
    SteadyTime settled_at{};             // when; the keepalive counts from here
    int failures = 0;                    // consecutive attempts that may be retried
    std::optional<SteadyTime> retry_at;  // set while backing off
    long refused_status = 0;             // the last permanent refusal, so it is logged once
  };

  explicit Target(RoutingPush c) : config(std::move(c)) {}
  // First, so libcurl is set up before this target's thread starts and torn down after it ends.
  HttpClientLibrary library;
  RoutingPush config;
  std::mutex mutex;
  std::condition_variable wake;
  std::map<std::string, Slot> slots;  // by cluster name
  std::atomic<std::uint64_t> successes{0}, retries{0}, failures{0};
  std::thread thread;

  // When `slot` should be sent next; nullopt when there is nothing to send.
  std::optional<SteadyTime> due(const Slot& slot) const {
    if (!slot.latest) return std::nullopt;
    if (slot.retry_at) return slot.retry_at;
    if (!slot.settled || slot.latest->list.generation != slot.settled_generation)
      return SteadyTime::min();
    if (config.keepalive <= Duration::zero()) return std::nullopt;
    return slot.settled_at +
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(config.keepalive);
  }
};

RouterPusher::RouterPusher(std::vector<RoutingPush> targets, const Clock& clock) : clock_(clock) {
  for (auto& t : targets) targets_.push_back(std::make_unique<Target>(std::move(t)));
  for (auto& t : targets_) {
    spdlog::info(
        "msg=\"pushing replica lists to router\" router=\"{}\" keepalive={} timeout={} "
        "signed={}",
        t->config.name,
        t->config.keepalive > Duration::zero() ? format_duration(t->config.keepalive) : "off",
        format_duration(t->config.timeout), t->config.secret ? "true" : "false");
    try {
      t->thread = std::thread([this, target = t.get()] { run(*target); });
    } catch (...) {
      stop();  // joins the threads already started; a joinable thread must not be destroyed
      throw;
    }
  }
}

RouterPusher::~RouterPusher() { stop(); }

void RouterPusher::on_publish(const std::shared_ptr<const ClusterSnapshot>& snapshot) {
  for (auto& t : targets_) {
    {
      std::lock_guard lock(t->mutex);
      t->slots[snapshot->name].latest = snapshot;  // replaces any unsent older list
    }
    t->wake.notify_one();
  }
}

void RouterPusher::stop() {
  stopping_ = true;
  for (auto& t : targets_) {
    // Under the mutex, so a worker between its check of stopping_ and its wait cannot miss it.
    { std::lock_guard lock(t->mutex); }
    t->wake.notify_all();
  }
  for (auto& t : targets_)
    if (t->thread.joinable()) t->thread.join();
}

void RouterPusher::run(Target& target) {
  // One kept-alive connection per router.
  std::optional<HttpClient> connection;
  try {
    connection.emplace(target.config.timeout, stopping_);
  } catch (const std::exception& e) {
    spdlog::error("msg=\"router push disabled: {}\" router=\"{}\"", e.what(), target.config.name);
    return;
  }
  std::mt19937_64 random(std::random_device{}());
  std::uniform_real_distribution<double> jitter(0.0, 1.0);
  const std::string& router = target.config.name;
  // What a refusal's answer must not bring into the log: the URL may carry a token.
  std::vector<std::string> secrets = url_secrets(target.config.url);
  if (target.config.secret) secrets.push_back(target.config.secret->value);

  std::unique_lock lock(target.mutex);
  while (!stopping_) {
    // The cluster due first; ties go to the first in name order.
    std::string cluster;
    std::optional<SteadyTime> when;
    for (const auto& [name, slot] : target.slots) {
      auto due = target.due(slot);
      if (due && (!when || *due < *when)) {
        when = due;
        cluster = name;
      }
    }
    if (!when) {
      target.wake.wait(lock);
      continue;
    }
    if (*when > std::chrono::steady_clock::now()) {
      target.wake.wait_until(lock, *when);
      continue;
    }

    const std::shared_ptr<const ClusterSnapshot> snapshot = target.slots[cluster].latest;
    lock.unlock();
    // Rendered at send time, so a keepalive carries the latest figures of the same list.
    std::optional<PushRequest> request;
    try {
      request = build_push(*snapshot, target.config.secret, clock_.now());
    } catch (const std::exception& e) {
      // A broken invariant (OpenSSL failing); count it and keep the other clusters going.
      spdlog::error("msg=\"cannot build the router push\" router=\"{}\" cluster={} error=\"{}\"",
                    router, cluster, e.what());
    }
    const std::string generation = std::to_string(snapshot->list.generation);
    HttpReply attempt;
    if (request)
      attempt = connection->post(target.config.url, request->body, request->headers);
    else
      attempt.status = kNotSent;
    const bool answered = attempt.error.empty();
    const PushOutcome outcome =
        answered ? classify_push_status(attempt.status) : PushOutcome::retry;
    const std::string& error = attempt.error;
    lock.lock();
    if (attempt.aborted || stopping_) break;

    Target::Slot& slot = target.slots[cluster];
    const auto now = std::chrono::steady_clock::now();
    switch (outcome) {
      case PushOutcome::success:
        ++target.successes;
        if (slot.failures > 0)
          spdlog::info(
              "msg=\"router push recovered\" router=\"{}\" cluster={} generation={} "
              "failed_attempts={}",
              router, cluster, generation, slot.failures);
        else
          spdlog::debug(
              "msg=\"router push delivered\" router=\"{}\" cluster={} generation={} "
              "status={}",
              router, cluster, generation, attempt.status);
        slot.settled = true;
        slot.settled_generation = snapshot->list.generation;
        slot.settled_at = now;
        slot.failures = 0;
        slot.retry_at.reset();
        slot.refused_status = 0;
        break;
      case PushOutcome::retry: {
        ++target.retries;
        ++slot.failures;
        const Duration wait = push_backoff(slot.failures, attempt.retry_after, jitter(random));
        slot.retry_at = now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(wait);
        // A warning on the first failure of a streak and every tenth after it (about every
        // 5 minutes at the backoff cap), not on every retry.
        const auto level = slot.failures % 10 == 1 ? spdlog::level::warn : spdlog::level::debug;
        const auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(wait);
        if (answered)
          spdlog::log(level,
                      "msg=\"router push failed; retrying\" router=\"{}\" cluster={} "
                      "generation={} status={} failed_attempts={} retry_in={}",
                      router, cluster, generation, attempt.status, slot.failures,
                      format_duration(wait_ms));
        else
          spdlog::log(level,
                      "msg=\"router push failed; retrying\" router=\"{}\" cluster={} "
                      "generation={} error=\"{}\" failed_attempts={} retry_in={}",
                      router, cluster, generation, error, slot.failures, format_duration(wait_ms));
        break;
      }
      case PushOutcome::permanent:
        ++target.failures;
        // The router will not take this body: wait for a new list or the keepalive.
        if (slot.refused_status != attempt.status && attempt.status != kNotSent)
          spdlog::warn(
              "msg=\"router refused the push; not retrying until the list changes or "
              "the keepalive\" router=\"{}\" cluster={} generation={} status={} "
              "response=\"{}\"",
              router, cluster, generation, attempt.status, loggable(attempt.body, secrets));
        slot.refused_status = attempt.status;
        slot.settled = true;
        slot.settled_generation = snapshot->list.generation;
        slot.settled_at = now;
        slot.failures = 0;
        slot.retry_at.reset();
        break;
    }
  }
}

std::vector<prometheus::MetricFamily> RouterPusher::Collect() const {
  // Targets sharing a name (the default "host:port" of two URLs) share their series: two
  // series with one label set would break the exposition.
  std::map<std::string, std::array<std::uint64_t, 3>> by_router;
  for (const auto& t : targets_) {
    auto& counts = by_router[t->config.name];
    counts[0] += t->successes.load();
    counts[1] += t->retries.load();
    counts[2] += t->failures.load();
  }
  prometheus::MetricFamily family{
      "lagwatch_router_pushes_total",
      "Replica list pushes to routers by outcome: success (2xx), retry (no answer, 408, 429 or "
      "5xx; retried with backoff), failure (other status; not retried until the list changes "
      "or the keepalive).",
      prometheus::MetricType::Counter,
      {}};
  static constexpr std::array<const char*, 3> kResults = {"success", "retry", "failure"};
  for (const auto& [router, counts] : by_router) {
    for (std::size_t i = 0; i < kResults.size(); ++i) {
      prometheus::ClientMetric m;
      m.label = {{"router", router}, {"result", kResults[i]}};
      m.counter.value = static_cast<double>(counts[i]);
      family.metric.push_back(std::move(m));
    }
  }
  if (family.metric.empty()) return {};
  return {std::move(family)};
}

}  // namespace lagwatch
