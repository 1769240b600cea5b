// Renders snapshots as Prometheus metric families (design §3). Nothing here queries a
// database or keeps state: every scrape is a pure function of the latest snapshots.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "snapshot.h"
#include "snapshot_store.h"

namespace lagwatch {

std::vector<prometheus::MetricFamily> render_metrics(
    const std::vector<std::shared_ptr<const ClusterSnapshot>>& snapshots);

// prometheus-cpp's Collectable over the snapshot store, so /metrics is serialized by
// prometheus-cpp's TextSerializer.
class SnapshotCollectable final : public prometheus::Collectable {
 public:
  explicit SnapshotCollectable(const SnapshotStore& store) : store_(store) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const SnapshotStore& store_;
};

// The text exposition format of everything `collectables` return.
std::string serialize_metrics(const std::vector<const prometheus::Collectable*>& collectables);

}  // namespace lagwatch
