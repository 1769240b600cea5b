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
  Api(const SnapshotStore& store, ApiOptions options);
  void handle(const HttpRequest& request, Responder respond) const;

 private:
  const SnapshotStore& store_;
  ApiOptions options_;
  std::unique_ptr<prometheus::Collectable> snapshots_;
};

// One cluster's snapshot as the JSON of GET /api/v1/clusters.
nlohmann::json cluster_json(const ClusterSnapshot& snapshot);

}  // namespace lagwatch
