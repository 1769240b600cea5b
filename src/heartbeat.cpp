// Heartbeat SQL and writer (see heartbeat.h).
#include "heartbeat.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <string_view>

#include <prometheus/metric_family.h>

#include "log.h"

namespace lagwatch {

// Table and cluster names are plain identifiers (checked at config load), so they can be
// written into the SQL text as they are.
std::string heartbeat_read_sql(const std::string& engine, const HeartbeatConfig& hb,
                               const std::string& cluster) {
  if (hb.mode == HeartbeatConfig::Mode::write)
    return fmt::format("SELECT ts FROM {} WHERE cluster = '{}'", hb.table, cluster);
  if (hb.source_server_id)
    return fmt::format("SELECT max(ts) FROM {} WHERE server_id = {}", hb.table, *hb.source_server_id);
  if (engine == "mysql")
    return fmt::format("SELECT max(ts) FROM {} WHERE server_id <> @@server_id", hb.table);
  return fmt::format("SELECT max(ts) FROM {}", hb.table);
}

std::string heartbeat_write_sql(const std::string& engine, const HeartbeatConfig& hb,
                                const std::string& cluster, WallTime at) {
  double seconds = std::chrono::duration<double>(at.time_since_epoch()).count();
  if (engine == "postgres")
    return fmt::format(
        "INSERT INTO {} (cluster, ts) VALUES ('{}', {:.6f}) "
        "ON CONFLICT (cluster) DO UPDATE SET ts = EXCLUDED.ts",
        hb.table, cluster, seconds);
  return fmt::format(
      "INSERT INTO {} (cluster, ts) VALUES ('{}', {:.6f}) ON DUPLICATE KEY UPDATE ts = VALUES(ts)",
      hb.table, cluster, seconds);
}

namespace {

// `count` ASCII digits at `at` as a number; nullopt when any is not a digit (no sign, no space).
std::optional<int> digits(std::string_view text, std::size_t at, std::size_t count) {
  if (at + count > text.size()) return std::nullopt;
  int value = 0;
  for (char c : text.substr(at, count)) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

// pt-heartbeat's `ts`: "YYYY-MM-DDTHH:MM:SS[.f]" (1 to 9 fraction digits; a space for the T,
// as NOW(6) or a DATETIME prints it), in UTC. Every field is checked, not normalised:
// "2026-11-31" is not December 1st, it is not a heartbeat.
std::optional<WallTime> parse_utc_timestamp(std::string_view text) {
  using namespace std::chrono;
  if (text.size() < 19 || text[4] != '-' || text[7] != '-' ||
      (text[10] != 'T' && text[10] != ' ') || text[13] != ':' || text[16] != ':')
    return std::nullopt;
  auto y = digits(text, 0, 4), mo = digits(text, 5, 2), d = digits(text, 8, 2);
  auto h = digits(text, 11, 2), mi = digits(text, 14, 2), s = digits(text, 17, 2);
  if (!y || !mo || !d || !h || !mi || !s || *h > 23 || *mi > 59 || *s > 59) return std::nullopt;
  year_month_day date{year{*y}, month{static_cast<unsigned>(*mo)}, day{static_cast<unsigned>(*d)}};
  if (!date.ok()) return std::nullopt;
  nanoseconds fraction{0};
  if (text.size() > 19) {
    std::size_t count = text.size() - 20;
    if (text[19] != '.' || count < 1 || count > 9) return std::nullopt;
    auto f = digits(text, 20, count);
    if (!f) return std::nullopt;
    fraction = nanoseconds(*f);
    for (std::size_t i = count; i < 9; ++i) fraction *= 10;
  }
  return WallTime{} +
         duration_cast<WallTime::duration>(sys_days{date}.time_since_epoch() + hours(*h) +
                                           minutes(*mi) + seconds(*s) + fraction);
}

// lagwatch's own `ts`: epoch seconds as the server prints the DOUBLE it was given. from_chars:
// no locale, no leading space or '+', no hex; "nan"/"inf" and anything <= 0 are refused.
std::optional<WallTime> parse_epoch_seconds(std::string_view text) {
  double seconds = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
      !std::isfinite(seconds) || seconds <= 0)
    return std::nullopt;
  return WallTime{} +
         std::chrono::duration_cast<WallTime::duration>(std::chrono::duration<double>(seconds));
}

}  // namespace

std::optional<WallTime> parse_heartbeat(const HeartbeatConfig& hb, const std::string& text) {
  return hb.mode == HeartbeatConfig::Mode::write ? parse_epoch_seconds(text)
                                                 : parse_utc_timestamp(text);
}

HeartbeatWriter::HeartbeatWriter(const std::vector<ClusterConfig>& clusters,
                                 const CollectorRegistry& registry, const SnapshotStore& store,
                                 const Clock& clock)
    : registry_(registry), store_(store), clock_(clock) {
  for (const auto& c : clusters) {
    if (!c.heartbeat || c.heartbeat->mode != HeartbeatConfig::Mode::write) continue;
    auto worker = std::make_unique<Worker>();
    worker->cluster = c;
    workers_.push_back(std::move(worker));
  }
  for (auto& worker : workers_)
    worker->thread = std::thread([this, target = worker.get()] { run(*target); });
}

HeartbeatWriter::~HeartbeatWriter() { stop(); }

void HeartbeatWriter::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
}

void HeartbeatWriter::run(Worker& w) {
  const auto& hb = *w.cluster.heartbeat;
  std::string primary;
  std::unique_ptr<HeartbeatSink> sink;
  std::string last_error;
  auto next = std::chrono::steady_clock::now();
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      if (cv_.wait_until(lock, next, [&] { return stopping_; })) return;
    }
    next += hb.interval;
    if (next < std::chrono::steady_clock::now()) next = std::chrono::steady_clock::now() + hb.interval;

    auto snapshot = store_.get(w.cluster.name);
    if (!snapshot || snapshot->primaries != 1) continue;  // nowhere (or nowhere safe) to write
    if (snapshot->primary != primary) {
      sink.reset();
      primary = snapshot->primary;
    }
    try {
      if (!sink) {
        for (const auto& node : w.cluster.nodes)
          if (node.name == primary)
            sink = registry_.create_heartbeat(w.cluster.engine, {&w.cluster, &node, w.cluster.timeout});
        if (!sink) continue;
      }
      sink->write(clock_.now());
      ++w.written;
      if (!last_error.empty()) log_info("heartbeat writes recovered", {{"cluster", w.cluster.name}});
      last_error.clear();
    } catch (const std::exception& e) {
      ++w.failed;
      sink.reset();  // reconnect next time
      if (e.what() != last_error)
        log_warn("heartbeat write failed",
                 {{"cluster", w.cluster.name}, {"node", primary}, {"error", e.what()}});
      last_error = e.what();
    }
  }
}

std::vector<prometheus::MetricFamily> HeartbeatWriter::Collect() const {
  prometheus::MetricFamily f{"lagwatch_heartbeat_writes_total",
                             "Heartbeat writes on a cluster's primary, by result.",
                             prometheus::MetricType::Counter,
                             {}};
  for (const auto& w : workers_) {
    for (auto [result, value] : {std::pair{"success", w->written.load()},
                                 std::pair{"failure", w->failed.load()}}) {
      prometheus::ClientMetric m;
      m.label = {{"cluster", w->cluster.name}, {"engine", w->cluster.engine}, {"result", result}};
      m.counter.value = static_cast<double>(value);
      f.metric.push_back(std::move(m));
    }
  }
  if (f.metric.empty()) return {};
  return {f};
}

}  // namespace lagwatch
