// The latest snapshot of every cluster: written by the scheduler, read by everything else.
#pragma once

#include <cstdint>
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
  void publish(std::shared_ptr<const ClusterSnapshot> snapshot);

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
};

}  // namespace lagwatch
