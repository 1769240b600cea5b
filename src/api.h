// HTTP endpoints (design §5): routes requests to metrics, health, the JSON API and the
// status page. Every answer is built from snapshots; nothing here touches a database.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include <prometheus/collectable.h>

#include "http_server.h"
#include "long_poll.h"
#include "metrics.h"
#include "snapshot_store.h"

namespace lagwatch {

struct ApiOptions {
  // Extra collectables for /metrics (lagwatch's own process metrics and the like).
  std::vector<const prometheus::Collectable*> extra_collectables;
  // POST /-/reload; returns "" on success or the error to show.
  std::function<std::string()> reload;
};

class Api {
 public:
  // `watchers` parks long polls; it must be fed every published snapshot.
  Api(const SnapshotStore& store, ListWatchers& watchers, ApiOptions options);
  void handle(const HttpRequest& request, Responder respond) const;
  // Prepares /metrics for the snapshot; subscribe it to the store the API reads.
  void on_publish(const std::shared_ptr<const ClusterSnapshot>& snapshot) {
    metrics_.on_publish(snapshot);
  }

 private:
  void replicas(const HttpRequest& request, const std::string& cluster, Responder respond) const;
  void node_health(const HttpRequest& request, const std::string& cluster, const std::string& node,
                   bool primary, Responder respond) const;

  const SnapshotStore& store_;
  ListWatchers& watchers_;
  ApiOptions options_;
  MetricsText metrics_;
};

// One cluster's snapshot as the JSON of GET /api/v1/clusters.
nlohmann::json cluster_json(const ClusterSnapshot& snapshot);

// The replica list body of design §5 (also the push body).
nlohmann::json replica_list_json(const ClusterSnapshot& snapshot, const ReplicaList& list);

// RFC 3339 UTC with milliseconds: "2026-11-24T20:00:00.123Z".
std::string iso8601(WallTime t);

}  // namespace lagwatch
