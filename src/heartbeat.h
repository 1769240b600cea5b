// Heartbeat lag (design §2): the SQL both engines use to write and read the heartbeat table,
// and the writer that stamps lagwatch's clock on each heartbeat cluster's primary.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <prometheus/collectable.h>

#include "clock.h"
#include "collector.h"
#include "config.h"
#include "snapshot_store.h"

namespace lagwatch {

// The statement that reads the newest heartbeat on a replica of `engine` ("postgres" or
// "mysql"). Write mode reads lagwatch's own row (ts = epoch seconds). Read mode reads the `ts`
// of a pt-heartbeat table (UTC text "2026-11-25T12:00:00.123456", pt-heartbeat run with --utc):
// the row of `source_server_id` when configured (pt-heartbeat's --master-server-id), else the
// newest row — on MySQL/MariaDB the newest but the replica's own: a pt-heartbeat --update run
// on the replica itself (for its own replicas) keeps that row fresh, and reading it would
// report no lag however far behind the replica is.
std::string heartbeat_read_sql(const std::string& engine, const HeartbeatConfig& heartbeat,
                               const std::string& cluster);

// The statement that stamps `at` for `cluster` (write mode only).
std::string heartbeat_write_sql(const std::string& engine, const HeartbeatConfig& heartbeat,
                                const std::string& cluster, WallTime at);

// The value heartbeat_read_sql returned → a time; nullopt when it cannot be read (never 0).
// Write mode: epoch seconds. Read mode: "YYYY-MM-DDTHH:MM:SS[.f]" (or a space for the T, 1-9
// fraction digits) taken as UTC; a date or time that does not exist is refused, not normalised.
std::optional<WallTime> parse_heartbeat(const HeartbeatConfig& heartbeat, const std::string& text);

// One thread per cluster in write mode: every heartbeat interval it writes the time into the
// table on the cluster's current primary (from the latest snapshot). A failing or hung
// primary delays only the heartbeat, never collection.
class HeartbeatWriter : public prometheus::Collectable {
 public:
  HeartbeatWriter(const std::vector<ClusterConfig>& clusters, const CollectorRegistry& registry,
                  const SnapshotStore& store, const Clock& clock);
  ~HeartbeatWriter() override;
  void stop();
  std::vector<prometheus::MetricFamily> Collect() const override;
  bool empty() const { return workers_.empty(); }

 private:
  struct Worker {
    ClusterConfig cluster;
    std::thread thread;
    std::atomic<std::uint64_t> written{0};
    std::atomic<std::uint64_t> failed{0};
  };
  void run(Worker& worker);

  const CollectorRegistry& registry_;
  const SnapshotStore& store_;
  const Clock& clock_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace lagwatch
