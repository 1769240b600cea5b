// Scheduler and worker pool (see scheduler.h).
#include "scheduler.h"


#include <algorithm>

#include "log.h"
#include "units.h"

namespace lagwatch {

WorkerPool::WorkerPool(std::size_t threads) {
  for (std::size_t i = 0; i < threads; ++i)
    threads_.emplace_back([this] {
      for (;;) {
        std::function<void()> job;
        {
          std::unique_lock lock(mutex_);
          cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
          if (stopping_) return;  // queued collections are dropped: nobody will read them
          job = std::move(jobs_.front());
          jobs_.pop_front();
        }
        job();
      }
    });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void WorkerPool::submit(std::function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

std::shared_ptr<Scheduler::Cluster> Scheduler::build(ClusterConfig config,
                                                      const CollectorRegistry& registry) {
  auto cluster = std::make_shared<Cluster>();
  cluster->config = std::move(config);
  for (const auto& node_config : cluster->config.nodes) {
    Node node;
    node.config = &node_config;
    node.collector = registry.create(cluster->config.engine,
                                     {&cluster->config, &node_config, cluster->config.timeout});
    cluster->nodes.push_back(std::move(node));
  }
  return cluster;
}

Scheduler::Scheduler(std::vector<ClusterConfig> clusters, const CollectorRegistry& registry,
                     const Clock& clock, SnapshotStore& store, std::size_t workers)
    : clock_(clock), store_(store) {
  std::size_t node_count = 0;
  std::vector<std::string> names;
  for (auto& config : clusters) {
    clusters_.push_back(build(std::move(config), registry));
    node_count += clusters_.back()->nodes.size();
    names.push_back(clusters_.back()->config.name);
  }
  store_.expect(names);
  if (workers == 0) workers = std::clamp<std::size_t>(node_count, 1, 64);
  pool_ = std::make_unique<WorkerPool>(workers);
}

std::chrono::nanoseconds cycle_phase(const std::string& cluster, Duration interval_length) {
  auto interval = std::chrono::duration_cast<std::chrono::nanoseconds>(interval_length).count();
  if (interval <= 0) return {};
  // FNV-1a, then MurmurHash3's finalizer so names that differ in a digit land far apart:
  // stable across builds and platforms, unlike std::hash.
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char ch : cluster) h = (h ^ ch) * 1099511628211ull;
  h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdull;
  h = (h ^ (h >> 33)) * 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return std::chrono::nanoseconds(static_cast<std::int64_t>(h % static_cast<std::uint64_t>(interval)));
}

namespace {

// Equal settings, whatever line of the file they moved to.
bool same_settings(ClusterConfig a, ClusterConfig b) {
  a.line = b.line = 0;
  a.column = b.column = 0;
  for (auto* c : {&a, &b})
    for (auto& n : c->nodes) n.line = n.column = 0;
  return a == b;
}

// Whether a changed cluster's position timeline still describes the servers of `next`. The
// timeline holds the primary's positions on the exporter's clock: thresholds, routing,
// interval, timeout or a rotated password do not change them; another engine, or a node name
// now pointing at another server, does.
bool same_servers(const ClusterConfig& was, const ClusterConfig& next) {
  if (was.engine != next.engine) return false;
  for (const auto& n : next.nodes)
    for (const auto& m : was.nodes)
      if (n.name == m.name && n.dsn != m.dsn) return false;
  return true;
}

}  // namespace

void Scheduler::reconfigure(std::vector<ClusterConfig> configs, const CollectorRegistry& registry) {
  std::vector<std::shared_ptr<Cluster>> next;
  std::vector<std::string> names;
  {
    std::lock_guard lock(mutex_);
    for (auto& config : configs) {
      auto same = std::find_if(clusters_.begin(), clusters_.end(), [&](const auto& c) {
        return same_settings(c->config, config);
      });
      next.push_back(same != clusters_.end() ? *same : nullptr);
    }
  }
  // Build outside the lock: a collector's constructor may throw, and then nothing changed.
  std::vector<bool> rebuilt(configs.size(), false);
  for (std::size_t i = 0; i < configs.size(); ++i)
    if (!next[i]) {
      next[i] = build(configs[i], registry);
      rebuilt[i] = true;
    }
  for (const auto& c : next) names.push_back(c->config.name);
  {
    std::lock_guard lock(mutex_);
    // A changed cluster watching the same servers keeps its position timeline (under the lock:
    // the old cluster's cycles write it). Without it a stuck replica's lag would restart
    // from 0 as a lower bound, and routing, trusting a first sight, would list it again
    // until that bound passed max_lag_seconds.
    for (std::size_t i = 0; i < next.size(); ++i) {
      if (!rebuilt[i]) continue;
      for (const auto& old : clusters_)
        if (old->config.name == next[i]->config.name &&
            same_servers(old->config, next[i]->config)) {
          next[i]->history.timeline = old->history.timeline;
          next[i]->history.reference_primary = old->history.reference_primary;
        }
    }
    auto now = std::chrono::steady_clock::now();
    for (auto& c : next)
      if (c->cycle == 0 && !c->in_flight && c->next_start == std::chrono::steady_clock::time_point{})
        c->next_start = now + cycle_phase(c->config.name, c->config.interval);
    // Dropped clusters: abort what they still collect; their jobs finish into orphans.
    for (auto& old : clusters_)
      if (std::find(next.begin(), next.end(), old) == next.end())
        for (auto& n : old->nodes)
          if (n.busy) n.collector->abort();
    clusters_ = std::move(next);
    store_.expect(names);
  }
  cv_.notify_all();
}

Scheduler::~Scheduler() { stop(); }

void Scheduler::start() {
  std::lock_guard lock(mutex_);
  auto now = std::chrono::steady_clock::now();
  // Each cluster keeps its own phase of the interval, from the first cycle on, so a thousand
  // nodes are not all queried in the same millisecond: the servers (often one server behind
  // many names) would answer the burst late, and the queue of jobs in the worker pool would
  // eat into every node's timeout.
  for (auto& c : clusters_) c->next_start = now + cycle_phase(c->config.name, c->config.interval);
  thread_ = std::thread([this] { run(); });
}

void Scheduler::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (auto& c : clusters_)
      for (auto& n : c->nodes)
        if (n.busy) n.collector->abort();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  pool_.reset();  // joins the workers; aborted collections return promptly
}

void Scheduler::run() {
  std::unique_lock lock(mutex_);
  std::vector<std::shared_ptr<const ClusterSnapshot>> finished;
  while (!stopping_) {
    auto now = std::chrono::steady_clock::now();
    auto wake = now + std::chrono::hours(1);
    for (auto& c : clusters_) {
      if (c->in_flight && (c->outstanding == 0 || now >= c->deadline))
        finished.push_back(finish_cycle(*c));
      if (!c->in_flight && now >= c->next_start) begin_cycle(c, now);
      wake = std::min(wake, c->in_flight ? c->deadline : c->next_start);
    }
    if (!finished.empty()) {
      // Published without the lock, so the subscribers' work (rendering, pushes, alerts)
      // never holds up collection jobs reporting back.
      lock.unlock();
      for (auto& snapshot : finished) store_.publish(std::move(snapshot));
      finished.clear();
      lock.lock();
      continue;  // time has passed: look again before sleeping
    }
    cv_.wait_until(lock, wake);
  }
}

void Scheduler::begin_cycle(const std::shared_ptr<Cluster>& shared,
                            std::chrono::steady_clock::time_point now) {
  Cluster& cluster = *shared;
  cluster.in_flight = true;
  cluster.deadline = now + cluster.config.timeout;
  cluster.started_at = clock_.now();
  // Start times stay on the interval grid; a cycle that could not start on time is skipped,
  // not run twice to catch up.
  cluster.next_start += cluster.config.interval;
  // Late (the previous cycle overran, or this thread was not scheduled in time): skip to
  // the next slot of the cluster's own grid rather than restart the grid at `now`, which
  // would line up every cluster that was late together on the same instant.
  if (cluster.next_start <= now) {
    auto missed = (now - cluster.next_start) / cluster.config.interval + 1;
    cluster.next_start += missed * cluster.config.interval;
  }
  cluster.results.assign(cluster.nodes.size(), std::nullopt);
  cluster.outstanding = 0;
  std::uint64_t cycle = cluster.cycle + 1;
  for (std::size_t i = 0; i < cluster.nodes.size(); ++i) {
    Node& node = cluster.nodes[i];
    if (node.busy) continue;  // still stuck in the previous cycle: reported as a timeout
    node.busy = true;
    ++cluster.outstanding;
    pool_->submit([this, shared, &node, i, cycle] {
      Cluster& cluster = *shared;
      NodeSample sample = node.collector->collect(clock_);
      {
        std::lock_guard lock(mutex_);
        node.busy = false;
        if (cluster.in_flight && cluster.cycle + 1 == cycle && !cluster.results[i]) {
          cluster.results[i] = std::move(sample);
          --cluster.outstanding;
        }
      }
      cv_.notify_all();
    });
  }
}

std::shared_ptr<const ClusterSnapshot> Scheduler::finish_cycle(Cluster& cluster) {
  std::vector<NodeSample> samples;
  samples.reserve(cluster.nodes.size());
  for (std::size_t i = 0; i < cluster.nodes.size(); ++i) {
    Node& node = cluster.nodes[i];
    if (cluster.results[i]) {
      samples.push_back(std::move(*cluster.results[i]));
    } else {
      if (node.busy) node.collector->abort();
      NodeSample timed_out;
      timed_out.sampled_at = cluster.started_at;
      timed_out.duration = cluster.config.timeout;
      timed_out.error = CollectionError::timeout;
      timed_out.error_message = "no answer within the timeout of " +
                                format_duration(cluster.config.timeout);
      samples.push_back(std::move(timed_out));
    }
    node.stats.observe(to_seconds(samples.back().duration), samples.back().error);
  }
  log_transitions(cluster, samples);
  std::vector<CollectionStats> stats;
  for (const auto& n : cluster.nodes) stats.push_back(n.stats);
  cluster.in_flight = false;
  ++cluster.cycle;
  return std::make_shared<ClusterSnapshot>(evaluate_cluster(
      cluster.config, samples, stats, cluster.history, cluster.cycle, clock_.now()));
}

void Scheduler::log_transitions(Cluster& cluster, const std::vector<NodeSample>& samples) {
  for (std::size_t i = 0; i < samples.size(); ++i) {
    Node& node = cluster.nodes[i];
    const auto& s = samples[i];
    if (s.error == node.last_error && s.error_message == node.last_error_message) continue;
    if (s.up())
      log_info("collection recovered", {{"cluster", cluster.config.name}, {"node", node.config->name}});
    else
      log_warn("collection failed", {{"cluster", cluster.config.name},
                                     {"node", node.config->name},
                                     {"reason", error_reason(s.error)},
                                     {"error", s.error_message}});
    node.last_error = s.error;
    node.last_error_message = s.error_message;
  }
}

}  // namespace lagwatch
