// Snapshot store (see snapshot_store.h).
#include "snapshot_store.h"

#include <algorithm>

namespace lagwatch {

void SnapshotStore::expect(const std::vector<std::string>& clusters) {
  std::lock_guard lock(mutex_);
  order_ = clusters;
  std::erase_if(latest_, [&](const auto& kv) {
    return std::find(order_.begin(), order_.end(), kv.first) == order_.end();
  });
}

void SnapshotStore::publish(std::shared_ptr<const ClusterSnapshot> snapshot) {
  std::vector<Subscriber> subscribers;
  {
    std::lock_guard lock(mutex_);
    // A cycle that finished as a reload removed its cluster: nobody may see it any more.
    if (std::find(order_.begin(), order_.end(), snapshot->name) == order_.end()) return;
    latest_[snapshot->name] = snapshot;
    subscribers = subscribers_;
  }
  for (const auto& s : subscribers) s(snapshot);
}

void SnapshotStore::subscribe(Subscriber subscriber) {
  std::lock_guard lock(mutex_);
  subscribers_.push_back(std::move(subscriber));
}

std::vector<std::shared_ptr<const ClusterSnapshot>> SnapshotStore::all() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<const ClusterSnapshot>> out;
  for (const auto& name : order_)
    if (auto it = latest_.find(name); it != latest_.end()) out.push_back(it->second);
  return out;
}

std::shared_ptr<const ClusterSnapshot> SnapshotStore::get(const std::string& cluster) const {
  std::lock_guard lock(mutex_);
  auto it = latest_.find(cluster);
  return it == latest_.end() ? nullptr : it->second;
}

bool SnapshotStore::known(const std::string& cluster) const {
  std::lock_guard lock(mutex_);
  return std::find(order_.begin(), order_.end(), cluster) != order_.end();
}

bool SnapshotStore::ready() const {
  std::lock_guard lock(mutex_);
  return std::all_of(order_.begin(), order_.end(),
                     [&](const std::string& name) { return latest_.contains(name); });
}

}  // namespace lagwatch
