// Renders snapshots as Prometheus metric families (design §3). Nothing here queries a
// database: every scrape is a pure function of the latest snapshots.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "snapshot.h"
#include "snapshot_store.h"

namespace lagwatch {

std::vector<prometheus::MetricFamily> render_metrics(
    const std::vector<std::shared_ptr<const ClusterSnapshot>>& snapshots);

// The /metrics text of the snapshot store. Each cluster's families are serialized (by
// prometheus-cpp's TextSerializer) once per published snapshot, on the publishing thread,
// so a scrape only lists pieces of text in order: at 1,000 nodes rendering everything on
// every scrape took tens of milliseconds. The pieces are sent as they are (no 3 MB string is
// built, faulted in and freed per scrape). Their text is exactly what serializing
// render_metrics(store.all()) would give.
class MetricsText {
 public:
  explicit MetricsText(const SnapshotStore& store) : store_(store) {}
  // Renders the snapshot's text ahead of the next scrape.
  void on_publish(const std::shared_ptr<const ClusterSnapshot>& snapshot);
  // The text of the latest snapshots (rendered now if on_publish has not seen them), then
  // that of `extra`, as pieces to send in order. They stay valid while held.
  std::vector<std::shared_ptr<const std::string>> pieces(
      const std::vector<const prometheus::Collectable*>& extra) const;
  // The same text in one string.
  std::string serialize(const std::vector<const prometheus::Collectable*>& extra) const;

 private:
  struct Family {
    std::string name;
    std::string header;   // # HELP and # TYPE lines
    std::string samples;  // this cluster's sample lines
  };
  struct Rendered {
    std::shared_ptr<const ClusterSnapshot> snapshot;
    std::vector<Family> families;
  };
  static std::shared_ptr<const Rendered> render(std::shared_ptr<const ClusterSnapshot> snapshot);

  const SnapshotStore& store_;
  mutable std::mutex mutex_;
  mutable std::map<std::string, std::shared_ptr<const Rendered>> rendered_;  // by cluster
};

}  // namespace lagwatch
