// The latest snapshot of every cluster: written by the scheduler, read by everything else.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "snapshot.h"

namespace lagwatch {

class SnapshotStore {
 public:
  // Declares the clusters expected, in config order; ready() waits for each of them.
  void expect(const std::vector<std::string>& clusters);
  // Stores the snapshot, then tells every subscriber (on the publishing thread). Snapshots of
  // clusters not expected are dropped.
  void publish(std::shared_ptr<const ClusterSnapshot> snapshot);

  using Subscriber = std::function<void(const std::shared_ptr<const ClusterSnapshot>&)>;
  // Subscribers are called after each publish; they must return quickly (hand work off).
  void subscribe(Subscriber subscriber);

  // Snapshots in config order; clusters without a completed cycle are left out.
  std::vector<std::shared_ptr<const ClusterSnapshot>> all() const;
  std::shared_ptr<const ClusterSnapshot> get(const std::string& cluster) const;
  bool known(const std::string& cluster) const;
  // True once every expected cluster has completed a cycle.
  bool ready() const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> order_;
  std::map<std::string, std::shared_ptr<const ClusterSnapshot>> latest_;
  std::vector<Subscriber> subscribers_;
};

}  // namespace lagwatch
