// The scheduler: every `interval` it collects every node of a cluster concurrently, each
// under `timeout`, evaluates the cycle and publishes the cluster's snapshot.
//
// A node that hangs holds one worker until its timeout, when its collector is aborted; it
// never delays the other nodes, the other clusters, or readers of the snapshots.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "clock.h"
#include "collector.h"
#include "config.h"
#include "evaluate.h"
#include "snapshot_store.h"

namespace lagwatch {

// How long after lagwatch starts (or a reload adds the cluster) a cluster's first cycle
// starts, and so where in each interval all its cycles start: spread over the interval by
// the cluster's name, so many clusters do not query their servers in the same instant, and
// the same on every start.
std::chrono::nanoseconds cycle_phase(const std::string& cluster, Duration interval);

// A fixed set of threads running collection jobs in submission order.
class WorkerPool {
 public:
  explicit WorkerPool(std::size_t threads);
  ~WorkerPool();
  void submit(std::function<void()> job);
  std::size_t size() const { return threads_.size(); }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

class Scheduler {
 public:
  // `workers` = 0 picks one per node, at most 64.
  Scheduler(std::vector<ClusterConfig> clusters, const CollectorRegistry& registry,
            const Clock& clock, SnapshotStore& store, std::size_t workers = 0);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void start();
  void stop();

  // Applies a new set of clusters (a reload). A cluster whose settings are unchanged keeps
  // everything: connections, position timeline, routing hysteresis, list generation. A new
  // or changed cluster starts afresh (connections, cycles, collection counters, routing from
  // first sight, a new list generation), except that a changed one whose engine and node DSNs
  // are the same keeps its position timeline, so lag stays measured; a removed one stops
  // being collected. Collectors for the new clusters are built before anything changes, so an
  // exception leaves all as it was.
  void reconfigure(std::vector<ClusterConfig> clusters, const CollectorRegistry& registry);

 private:
  struct Node {
    const NodeConfig* config = nullptr;
    std::unique_ptr<Collector> collector;
    bool busy = false;  // a collection job is running (maybe overrunning its timeout)
    CollectionStats stats;
    CollectionError last_error = CollectionError::none;
    std::string last_error_message;
  };
  struct Cluster {
    ClusterConfig config;
    std::vector<Node> nodes;
    ClusterHistory history;
    std::uint64_t cycle = 0;
    std::chrono::steady_clock::time_point next_start{};
    bool in_flight = false;
    std::chrono::steady_clock::time_point deadline{};
    WallTime started_at{};
    std::vector<std::optional<NodeSample>> results;
    std::size_t outstanding = 0;
  };

  static std::shared_ptr<Cluster> build(ClusterConfig config, const CollectorRegistry& registry);
  void run();
  void begin_cycle(const std::shared_ptr<Cluster>& cluster, std::chrono::steady_clock::time_point now);
  // Evaluates the cycle; the caller publishes the snapshot (without holding mutex_).
  std::shared_ptr<const ClusterSnapshot> finish_cycle(Cluster& cluster);
  void log_transitions(Cluster& cluster, const std::vector<NodeSample>& samples);

  const Clock& clock_;
  SnapshotStore& store_;
  // Shared with the collection jobs in flight, so a cluster dropped by a reload outlives them.
  std::vector<std::shared_ptr<Cluster>> clusters_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
  std::unique_ptr<WorkerPool> pool_;
};

}  // namespace lagwatch
