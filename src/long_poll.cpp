// Long-poll waiters (see long_poll.h).
#include "long_poll.h"

#include <vector>

namespace lagwatch {

ListWatchers::ListWatchers(std::size_t max_waiters) : max_waiters_(max_waiters) {
  thread_ = std::thread([this] { expire_loop(); });
}

ListWatchers::~ListWatchers() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool ListWatchers::wait(const std::string& cluster, std::uint64_t index,
                        std::chrono::steady_clock::time_point deadline, Callback callback) {
  std::shared_ptr<const ClusterSnapshot> ready;
  {
    std::lock_guard lock(mutex_);
    auto it = latest_.find(cluster);
    if (it != latest_.end() && it->second->list.generation > index) {
      ready = it->second;
    } else {
      if (waiters_.size() >= max_waiters_) return false;
      waiters_.emplace(deadline, Waiter{cluster, index, std::move(callback)});
    }
  }
  if (ready) {
    callback(ready);
  } else {
    cv_.notify_all();  // the new deadline may be the earliest
  }
  return true;
}

void ListWatchers::on_publish(const std::shared_ptr<const ClusterSnapshot>& snapshot) {
  std::vector<Callback> wake;
  {
    std::lock_guard lock(mutex_);
    latest_[snapshot->name] = snapshot;
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (it->second.cluster == snapshot->name && snapshot->list.generation > it->second.index) {
        wake.push_back(std::move(it->second.callback));
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& cb : wake) cb(snapshot);
}

std::size_t ListWatchers::waiting() const {
  std::lock_guard lock(mutex_);
  return waiters_.size();
}

void ListWatchers::expire_loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    auto now = std::chrono::steady_clock::now();
    std::vector<std::pair<Callback, std::shared_ptr<const ClusterSnapshot>>> expired;
    while (!waiters_.empty() && waiters_.begin()->first <= now) {
      auto node = waiters_.extract(waiters_.begin());
      auto it = latest_.find(node.mapped().cluster);
      expired.emplace_back(std::move(node.mapped().callback),
                           it == latest_.end() ? nullptr : it->second);
    }
    if (!expired.empty()) {
      lock.unlock();
      for (auto& [cb, snap] : expired) cb(snap);
      lock.lock();
      continue;
    }
    if (waiters_.empty()) {
      cv_.wait(lock);
    } else {
      // A copy: wait_until reads its deadline again after waking, and on_publish may erase
      // the waiter (and the key with it) while the lock is released.
      const auto next_deadline = waiters_.begin()->first;
      cv_.wait_until(lock, next_deadline);
    }
  }
  // Answer whoever is still waiting so no client hangs until its own timeout.
  for (auto& [deadline, w] : waiters_) {
    auto it = latest_.find(w.cluster);
    auto snap = it == latest_.end() ? nullptr : it->second;
    lock.unlock();
    w.callback(snap);
    lock.lock();
  }
  waiters_.clear();
}

}  // namespace lagwatch
