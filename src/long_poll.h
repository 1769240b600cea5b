// Long polls on the replica list (Consul-style blocking queries): a waiter is a callback
// parked until its cluster's list generation passes its index or its wait runs out. Waiters
// hold no thread; one timer thread expires them.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "snapshot.h"

namespace lagwatch {

class ListWatchers {
 public:
  using Callback = std::function<void(std::shared_ptr<const ClusterSnapshot>)>;

  explicit ListWatchers(std::size_t max_waiters = 10000);
  ~ListWatchers();
  ListWatchers(const ListWatchers&) = delete;
  ListWatchers& operator=(const ListWatchers&) = delete;

  // Calls `callback` exactly once, on some thread: with the first snapshot whose list
  // generation is above `index`, or with the latest snapshot at `deadline`. Returns false
  // (and never calls it) when max_waiters are already parked.
  bool wait(const std::string& cluster, std::uint64_t index,
            std::chrono::steady_clock::time_point deadline, Callback callback);

  // Feed every published snapshot here (SnapshotStore::subscribe).
  void on_publish(const std::shared_ptr<const ClusterSnapshot>& snapshot);

  std::size_t waiting() const;

 private:
  struct Waiter {
    std::string cluster;
    std::uint64_t index;
    Callback callback;
  };
  void expire_loop();

  const std::size_t max_waiters_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::string, std::shared_ptr<const ClusterSnapshot>> latest_;
  std::multimap<std::chrono::steady_clock::time_point, Waiter> waiters_;  // by deadline
  std::thread thread_;
};

}  // namespace lagwatch
