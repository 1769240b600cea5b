// The notifier's threads and files (see notifier.h): an evaluator feeding the AlertBook, one
// delivery worker per receiver around the shared HttpClient, and the atomic state file.
#include "notifier.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <system_error>

#include "log.h"
#include "notifier_payloads.h"

namespace lagwatch {

// ---- RateLimiter --------------------------------------------------------------------------

RateLimiter::RateLimiter(double per_second, double burst)
    : per_second_(per_second), burst_(burst), tokens_(burst) {}

void RateLimiter::refill(SteadyTime now) const {
  if (updated_ == SteadyTime{}) updated_ = now;
  if (now > updated_) {
    tokens_ = std::min(
        burst_, tokens_ + per_second_ * std::chrono::duration<double>(now - updated_).count());
    updated_ = now;
  }
}

SteadyTime RateLimiter::acquire(SteadyTime now) {
  std::lock_guard lock(mutex_);
  refill(now);
  if (tokens_ >= 1.0) {
    tokens_ -= 1.0;
    return now;
  }
  const double seconds = (1.0 - tokens_) / per_second_;
  return now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                   std::chrono::duration<double>(seconds));
}

SteadyTime RateLimiter::available_at(SteadyTime now) const {
  std::lock_guard lock(mutex_);
  refill(now);
  if (tokens_ >= 1.0) return now;
  const double seconds = (1.0 - tokens_) / per_second_;
  return now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                   std::chrono::duration<double>(seconds));
}

void RateLimiter::take(SteadyTime now) {
  std::lock_guard lock(mutex_);
  refill(now);
  tokens_ -= 1.0;
}

// ---- State file ---------------------------------------------------------------------------

namespace {

[[noreturn]] void throw_write_error(const std::string& path, const std::string& step, int error) {
  throw std::runtime_error("cannot write " + path + ": " + step + ": " +
                           std::generic_category().message(error));
}

// A file descriptor closed on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

void write_file_atomically(const std::string& path, const std::string& contents) {
  const std::filesystem::path target(path);
  const std::string temporary = path + ".tmp";
  {
    Fd file{::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)};
    if (file.fd < 0) throw_write_error(path, "open " + temporary, errno);
    std::size_t written = 0;
    while (written < contents.size()) {
      const ssize_t n = ::write(file.fd, contents.data() + written, contents.size() - written);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw_write_error(path, "write", errno);
      }
      written += static_cast<std::size_t>(n);
    }
    if (::fsync(file.fd) != 0) throw_write_error(path, "fsync", errno);
    const int fd = file.fd;
    file.fd = -1;
    if (::close(fd) != 0) throw_write_error(path, "close", errno);
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) throw_write_error(path, "rename", errno);
  // The rename itself is durable only once the directory is synced.
  const std::string directory =
      target.has_parent_path() ? target.parent_path().string() : std::string(".");
  Fd dir{::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (dir.fd >= 0) ::fsync(dir.fd);
}

// ---- Notifier -----------------------------------------------------------------------------

struct Notifier::Receiver {
  explicit Receiver(AlertReceiver c) : config(std::move(c)) {}
  AlertReceiver config;
  Duration repeat_interval{};
  std::shared_ptr<RateLimiter> limiter;  // null: no client-side limit
  std::condition_variable wake;
  // Guarded by Notifier::mutex_.
  int failures = 0;  // consecutive attempts that may be retried
  std::optional<SteadyTime> retry_at;
  std::atomic<std::uint64_t> successes{0}, retries{0}, refusals{0};
  std::thread thread;
};

namespace {

std::string hostname() {
  std::array<char, 256> name{};
  if (::gethostname(name.data(), name.size() - 1) != 0) return "localhost";
  return name.data();
}

std::string conditions_text(const AlertReceiver& r) {
  if (r.conditions.empty()) return "all";
  std::string text;
  for (Condition c : r.conditions)
    text += (text.empty() ? "" : ",") + std::string(condition_info(c).name);
  return text;
}

std::string severities_text(const AlertReceiver& r) {
  if (r.severities.empty()) return "all";
  std::string text;
  for (Severity s : r.severities) text += (text.empty() ? "" : ",") + std::string(severity_name(s));
  return text;
}

// What a receiver now knows once `work` was delivered in the form its type sends.
Told told_after(ReceiverType type, const Work& work) {
  if (work.kind != WorkKind::resolve) return Told::firing;
  // PagerDuty resolves only what it was triggered with: a firing it never heard of is
  // triggered first, and resolved on the next round.
  if (type == ReceiverType::pagerduty && !work.told_firing) return Told::firing;
  return Told::resolved;
}

}  // namespace

Notifier::Notifier(AlertingConfig config, const std::vector<ClusterConfig>& clusters,
                   const Clock& clock)
    : config_(std::move(config)),
      clock_(clock),
      book_(AlertTimers::from(config_), receiver_routes(config_)) {
  if (config_.status_page_url.empty())
    config_.status_page_url = default_status_page_url(":9817", hostname());
  watch(clusters);

  // Load what a previous run knew.
  const std::string& path = config_.state_file;
  std::error_code exists_error;
  if (std::filesystem::exists(path, exists_error)) {
    try {
      std::ifstream in(path);
      if (!in) throw std::runtime_error(std::generic_category().message(errno));
      std::stringstream text;
      text << in.rdbuf();
      book_.restore(nlohmann::json::parse(text.str()));
    } catch (const std::exception& e) {
      // Starting empty may re-send alerts still firing; refusing to start would page nobody.
      const std::string aside = path + ".corrupt";
      std::error_code rename_error;
      std::filesystem::rename(path, aside, rename_error);
      log_error(
          "cannot load the alert state; starting without it (firing alerts may be sent "
          "again)",
          {{"state_file", path},
           {"moved_to", rename_error ? std::string("(not moved)") : aside},
           {"error", e.what()}});
      book_ = AlertBook(AlertTimers::from(config_), receiver_routes(config_));
    }
  }
  book_.forget_unconfigured(configured_, clock_.now());
  std::size_t firing = 0, owed = 0;
  for (const auto& [key, alert] : book_.alerts()) (alert.firing() ? firing : owed)++;
  // Written now so that a state_file lagwatch cannot write stops it at start, not at 3 am.
  const auto state = snapshot_state();
  write_file_atomically(path, state.second);
  written_ = state.second;
  written_seq_ = state.first;
  log_info("alert state loaded",
           {{"state_file", path}, {"firing", firing}, {"resolves_owed", owed}});

  std::map<std::string, std::shared_ptr<RateLimiter>> limiters;  // by type and URL/key
  for (const auto& r : config_.receivers) {
    auto receiver = std::make_unique<Receiver>(r);
    receiver->repeat_interval = r.repeat_interval.value_or(config_.repeat_interval);
    if (r.type == ReceiverType::slack || r.type == ReceiverType::pagerduty) {
      const bool slack = r.type == ReceiverType::slack;
      const std::string key = std::string(receiver_type_name(r.type)) + "\n" +
                              (slack ? r.url.value : r.routing_key->value);
      auto& limiter = limiters[key];
      if (!limiter)
        limiter = std::make_shared<RateLimiter>(slack ? kSlackPerSecond : kPagerDutyPerSecond,
                                                slack ? kSlackBurst : kPagerDutyBurst);
      receiver->limiter = limiter;
    }
    receivers_.push_back(std::move(receiver));
  }

  try {
    for (auto& r : receivers_) {
      log_info("notifying receiver", {{"receiver", r->config.name},
                                      {"type", receiver_type_name(r->config.type)},
                                      {"conditions", conditions_text(r->config)},
                                      {"severities", severities_text(r->config)},
                                      {"repeat_interval", format_duration(r->repeat_interval)},
                                      {"timeout", format_duration(r->config.timeout)}});
      r->thread = std::thread([this, receiver = r.get()] { deliver_loop(*receiver); });
    }
    evaluator_ = std::thread([this] { evaluate_loop(); });
  } catch (...) {
    stop();  // joins the threads already started; a joinable thread must not be destroyed
    throw;
  }
}

Notifier::~Notifier() { stop(); }

void Notifier::on_publish(const std::shared_ptr<const ClusterSnapshot>& snapshot) {
  {
    std::lock_guard lock(mutex_);
    inbox_[snapshot->name] = snapshot;
  }
  evaluate_wake_.notify_one();
}

void Notifier::watch(const std::vector<ClusterConfig>& clusters) {
  clusters_.clear();
  configured_.clear();
  for (const auto& c : clusters) {
    clusters_.push_back(c.name);
    for (const auto& n : c.nodes) configured_[c.name].insert(n.name);
  }
}

void Notifier::on_clusters_changed(const std::vector<ClusterConfig>& clusters) {
  std::pair<std::uint64_t, std::string> state;
  {
    std::lock_guard lock(mutex_);
    watch(clusters);
    std::erase_if(inbox_, [&](const auto& entry) { return !configured_.contains(entry.first); });
    std::vector<AlertKey> was_firing;
    for (const auto& [key, alert] : book_.alerts())
      if (alert.firing()) was_firing.push_back(key);
    book_.forget_unconfigured(configured_, clock_.now());
    for (const auto& key : was_firing) {
      const auto now = book_.alerts().find(key);
      if (now == book_.alerts().end() || !now->second.firing())
        log_info("alert resolved", {{"dedup_key", dedup_key(key)}, {"why", "no longer watched"}});
    }
    state = snapshot_state();
  }
  persist(state);
  for (auto& r : receivers_) r->wake.notify_one();
}

void Notifier::stop() {
  stopping_ = true;
  {
    // Under the mutex, so a thread between its check of stopping_ and its wait cannot miss it.
    std::lock_guard lock(mutex_);
  }
  evaluate_wake_.notify_all();
  for (auto& r : receivers_) r->wake.notify_all();
  if (evaluator_.joinable()) evaluator_.join();
  for (auto& r : receivers_)
    if (r->thread.joinable()) r->thread.join();
}

std::pair<std::uint64_t, std::string> Notifier::snapshot_state() {
  return {++save_seq_, book_.save().dump(2) + "\n"};
}

void Notifier::persist(const std::pair<std::uint64_t, std::string>& state) {
  std::lock_guard lock(write_mutex_);
  if (state.first <= written_seq_ || state.second == written_) return;
  try {
    write_file_atomically(config_.state_file, state.second);
    written_ = state.second;
    written_seq_ = state.first;
  } catch (const std::exception& e) {
    ++write_failures_;
    log_error("cannot save the alert state; a restart may re-send or miss alerts",
              {{"error", e.what()}});
  }
}

void Notifier::evaluate_loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (inbox_.empty()) {
      evaluate_wake_.wait(lock);
      continue;
    }
    const auto snapshots = std::move(inbox_);
    inbox_.clear();
    for (const auto& [cluster, snapshot] : snapshots) {
      if (!configured_.contains(cluster)) continue;  // removed by a reload, or not yet told
      std::map<AlertKey, WallTime> was_firing;
      for (const auto& [key, a] : book_.alerts())
        if (key.cluster == cluster && a.firing()) was_firing[key] = *a.firing_since;
      const std::uint64_t merged_episodes = book_.merged_episodes();
      book_.evaluate(*snapshot, clock_.now());
      for (const auto& [key, a] : book_.alerts()) {
        if (key.cluster != cluster || !a.firing()) continue;
        const auto before = was_firing.find(key);
        if (before == was_firing.end() || before->second != *a.firing_since)
          log_info("alert firing", {{"dedup_key", dedup_key(key)},
                                    {"severity", severity_name(a.severity)},
                                    {"summary", a.facts.summary}});
        if (before != was_firing.end()) was_firing.erase(before);
      }
      for (const auto& [key, since] : was_firing)
        log_info("alert resolved", {{"dedup_key", dedup_key(key)}});
      if (book_.merged_episodes() != merged_episodes) {
        log_warn("a receiver that cannot be reached missed an alert resolving and firing again",
                 {{"cluster", cluster},
                  {"merged", book_.merged_episodes() - merged_episodes},
                  {"max_owed_per_alert", kMaxOwedEpisodes}});
      }
    }
    const auto state = snapshot_state();
    lock.unlock();
    persist(state);
    for (auto& r : receivers_) r->wake.notify_one();
    lock.lock();
  }
}

void Notifier::deliver_loop(Receiver& r) {
  const std::string& name = r.config.name;
  std::optional<HttpClient> client;
  try {
    client.emplace(r.config.timeout, stopping_);
  } catch (const std::exception& e) {
    log_error("receiver disabled", {{"receiver", name}, {"error", e.what()}});
    return;
  }
  std::mt19937_64 random(std::random_device{}());
  std::uniform_real_distribution<double> jitter(0.0, 1.0);
  const PayloadContext context{name, config_.status_page_url, config_.runbook_url};
  const ReceiverType type = r.config.type;
  std::string url = r.config.url.value;
  if (type == ReceiverType::alertmanager) {
    while (!url.empty() && url.back() == '/') url.pop_back();
    url += "/api/v2/alerts";
  }
  // What a refusal's answer must not bring into the log: a Slack or webhook URL is a token.
  std::vector<std::string> secrets = url_secrets(url);
  if (r.config.routing_key) secrets.push_back(r.config.routing_key->value);

  std::unique_lock lock(mutex_);
  while (!stopping_) {
    const SteadyTime steady_now = std::chrono::steady_clock::now();
    if (r.retry_at && *r.retry_at > steady_now) {
      r.wake.wait_until(lock, *r.retry_at);
      continue;
    }
    const WallTime now = clock_.now();
    std::vector<Work> works = book_.pending(name, now);
    if (works.empty()) {
      if (const auto next = book_.next_repeat(name))
        r.wake.wait_for(
            lock, std::max<std::chrono::nanoseconds>(*next - now, std::chrono::milliseconds(10)));
      else
        r.wake.wait(lock);
      continue;
    }
    if (r.limiter) {
      // Spent now, before the request, in one step with the check: receivers sharing a
      // webhook or routing key that wake together cannot both take the last token.
      const SteadyTime at = r.limiter->acquire(steady_now);
      if (at > steady_now) {
        r.wake.wait_until(lock, at);
        continue;
      }
    }
    // PagerDuty takes one event per alert; the others get one message per cluster.
    const std::string cluster = works.front().alert.key.cluster;
    if (type == ReceiverType::pagerduty) {
      works.resize(1);
    } else {
      std::erase_if(works, [&](const Work& w) { return w.alert.key.cluster != cluster; });
    }
    lock.unlock();

    std::string body;
    std::string what;  // for the log: what was sent
    switch (type) {
      case ReceiverType::slack:
        body = slack_message(cluster, works, context)
                   .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        break;
      case ReceiverType::webhook:
        body = webhook_message(cluster, works, context)
                   .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        break;
      case ReceiverType::alertmanager:
        body = alertmanager_alerts(works, context, now, r.repeat_interval)
                   .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        break;
      case ReceiverType::pagerduty: {
        const Work& w = works.front();
        const bool trigger = told_after(type, w) == Told::firing;
        body = pagerduty_event(w.alert, trigger, r.config.routing_key->value, context)
                   .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        what = std::string(trigger ? "trigger " : "resolve ") + dedup_key(w.alert.key);
        break;
      }
    }
    if (type != ReceiverType::pagerduty) {
      const auto firing = std::count_if(works.begin(), works.end(),
                                        [](const Work& w) { return w.kind != WorkKind::resolve; });
      what = std::to_string(firing) + " firing, " +
             std::to_string(static_cast<std::ptrdiff_t>(works.size()) - firing) + " resolved";
    }
    const HttpReply reply = client->post(url, body, {"Content-Type: application/json"});

    lock.lock();
    if (reply.aborted || stopping_) break;
    const bool answered = reply.error.empty();
    const HttpOutcome outcome = answered ? classify_http_status(reply.status) : HttpOutcome::retry;
    switch (outcome) {
      case HttpOutcome::success:
        ++r.successes;
        log_info("notification delivered", {{"receiver", name},
                                            {"cluster", cluster},
                                            {"sent", what},
                                            {"status", reply.status},
                                            {"failed_attempts", r.failures}});
        r.failures = 0;
        r.retry_at.reset();
        for (const Work& w : works) book_.told(name, w, told_after(type, w), clock_.now());
        break;
      case HttpOutcome::retry: {
        ++r.retries;
        ++r.failures;
        const Duration wait =
            retry_backoff(r.failures, reply.retry_after, jitter(random), kNotifyBackoffBase,
                          kNotifyBackoffCap, kNotifyRetryAfterCap);
        r.retry_at = std::chrono::steady_clock::now() +
                     std::chrono::duration_cast<std::chrono::steady_clock::duration>(wait);
        // A warning on the first failure of a streak and every tenth after it.
        const auto level = r.failures % 10 == 1 ? spdlog::level::warn : spdlog::level::debug;
        log_event(level, "notification failed; retrying",
                  {{"receiver", name},
                   {"cluster", cluster},
                   {"sent", what},
                   {"status", reply.status},
                   {"error", answered ? std::string() : reply.error},
                   {"failed_attempts", r.failures},
                   {"retry_in",
                    format_duration(std::chrono::duration_cast<std::chrono::milliseconds>(wait))}});
        break;
      }
      case HttpOutcome::permanent:
        ++r.refusals;
        // Retrying the same body cannot help (bad routing key, malformed event, revoked
        // webhook): settle it so the receiver's other alerts go on, and say so loudly.
        log_error("receiver refused the notification; not retrying it",
                  {{"receiver", name},
                   {"cluster", cluster},
                   {"sent", what},
                   {"status", reply.status},
                   {"response", loggable(reply.body, secrets)}});
        r.failures = 0;
        r.retry_at.reset();
        for (const Work& w : works) book_.told(name, w, told_after(type, w), clock_.now());
        break;
    }
    const auto state = snapshot_state();
    lock.unlock();
    persist(state);
    lock.lock();
  }
}

std::vector<prometheus::MetricFamily> Notifier::Collect() const {
  std::vector<prometheus::MetricFamily> families;
  // Receivers have unique names (the config refuses duplicates).
  prometheus::MetricFamily notifications{
      "lagwatch_notifications_total",
      "Notification requests by receiver and outcome: success (2xx), retry (no answer, 408, "
      "429 or 5xx; retried with backoff), failure (other status; not retried).",
      prometheus::MetricType::Counter,
      {}};
  static constexpr std::array<const char*, 3> kResults = {"success", "retry", "failure"};
  for (const auto& r : receivers_) {
    const std::array<std::uint64_t, 3> counts = {r->successes.load(), r->retries.load(),
                                                 r->refusals.load()};
    for (std::size_t i = 0; i < kResults.size(); ++i) {
      prometheus::ClientMetric m;
      m.label = {{"receiver", r->config.name}, {"result", kResults[i]}};
      m.counter.value = static_cast<double>(counts[i]);
      notifications.metric.push_back(std::move(m));
    }
  }
  if (!notifications.metric.empty()) families.push_back(std::move(notifications));

  std::map<std::pair<std::string, Condition>, int> firing;
  std::vector<std::string> clusters;
  {
    std::lock_guard lock(mutex_);
    clusters = clusters_;
    for (const auto& [key, alert] : book_.alerts())
      if (alert.firing()) ++firing[{key.cluster, key.condition}];
  }
  prometheus::MetricFamily alerts{
      "lagwatch_alerts_firing",
      "Alerts of the built-in notifier firing now (their `for` elapsed, inhibited ones "
      "included), by cluster and condition.",
      prometheus::MetricType::Gauge,
      {}};
  for (const auto& cluster : clusters) {
    for (const auto& c : kConditions) {
      prometheus::ClientMetric m;
      m.label = {{"cluster", cluster},
                 {"condition", std::string(c.name)},
                 {"severity", severity_name(c.severity)}};
      const auto it = firing.find({cluster, c.condition});
      m.gauge.value = it == firing.end() ? 0 : it->second;
      alerts.metric.push_back(std::move(m));
    }
  }
  if (!alerts.metric.empty()) families.push_back(std::move(alerts));

  prometheus::MetricFamily failures{
      "lagwatch_alert_state_write_failures_total",
      "Failed writes of the alert state file; while they fail a restart may re-send or miss "
      "alerts.",
      prometheus::MetricType::Counter,
      {}};
  prometheus::ClientMetric m;
  m.counter.value = static_cast<double>(write_failures_.load());
  failures.metric.push_back(std::move(m));
  families.push_back(std::move(failures));
  return families;
}

}  // namespace lagwatch
