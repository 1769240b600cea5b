// Heartbeat SQL and writer (see heartbeat.h).
#include "heartbeat.h"

#include <fmt/format.h>

#include <cmath>
#include <ctime>

#include <prometheus/metric_family.h>

#include "log.h"

namespace lagwatch {

// Table and cluster names are plain identifiers (checked at config load), so they can be
// written into the SQL text as they are.
std::string heartbeat_read_sql(const HeartbeatConfig& hb, const std::string& cluster) {
  if (hb.mode == HeartbeatConfig::Mode::read) return fmt::format("SELECT max(ts) FROM {}", hb.table);
  return fmt::format("SELECT ts FROM {} WHERE cluster = '{}'", hb.table, cluster);
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

std::optional<WallTime> parse_heartbeat(const HeartbeatConfig& hb, const std::string& text) {
  if (hb.mode == HeartbeatConfig::Mode::write) {
    try {
      std::size_t used = 0;
      double seconds = std::stod(text, &used);
      if (used != text.size() || !std::isfinite(seconds) || seconds <= 0) return std::nullopt;
      return WallTime{} + std::chrono::duration_cast<WallTime::duration>(
                              std::chrono::duration<double>(seconds));
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  // pt-heartbeat: "YYYY-MM-DDTHH:MM:SS[.ffffff]" in UTC.
  std::tm tm{};
  int year, month, day, hour, minute;
  double second = 0;
  char t = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2d%c%2d:%2d:%lf", &year, &month, &day, &t, &hour,
                  &minute, &second) != 7 ||
      (t != 'T' && t != ' '))
    return std::nullopt;
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = 0;
  std::time_t whole = timegm(&tm);
  if (whole == static_cast<std::time_t>(-1) || second < 0 || second >= 61) return std::nullopt;
  return std::chrono::system_clock::from_time_t(whole) +
         std::chrono::duration_cast<WallTime::duration>(std::chrono::duration<double>(second));
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
