// Routing policy: which replicas are fit to serve reads, with rise/fall hysteresis,
// min_serving keepers and primary fallback. Pure logic over snapshots; the one place that
// decides routability.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "clock.h"
#include "config.h"
#include "position.h"
#include "snapshot.h"

namespace lagwatch {

// What the policy remembers of one node between cycles.
struct RoutingMemory {
  bool listed = false;
  int good_streak = 0;  // consecutive qualifying samples while not listed
  int bad_streak = 0;   // consecutive failing samples while listed
};

// Whether one sample of a node is fit to serve reads, before hysteresis: a reachable
// replica, streaming, with known lag within max_lag_seconds / max_lag_bytes, and applying
// unless it is caught up.
bool qualifies(const NodeStatus& node, const RoutingConfig& routing);

// 100 for a replica with no lag, down to 10 at max_lag_seconds; 1 for a degraded keeper.
int replica_weight(const NodeStatus& node, const RoutingConfig& routing, bool degraded);

// Updates `memory` with this cycle's nodes and fills snapshot.list (without its generation)
// and every node's `routable`. Nodes absent from the snapshot are forgotten.
void apply_routing(ClusterSnapshot& snapshot, const RoutingConfig& routing,
                   std::map<std::string, RoutingMemory>& memory);

// The generation of `list` given the previous list: unchanged when membership, order,
// degraded flags, fallback and primary are the same; otherwise max(previous + 1, now in
// epoch milliseconds), so it never goes backwards, also across restarts.
std::uint64_t next_generation(const ReplicaList& previous, const ReplicaList& list, WallTime now);

// Read-your-writes: true when `replayed` (a replica's position) includes `token`.
// PostgreSQL LSNs ("0/3000060"); MariaDB GTID lists ("0-1-42,1-2-7": every domain of the
// token reached); MySQL GTID sets ("uuid:1-42:50,uuid2:1-3": every interval of the token
// contained). nullopt when the token cannot be read for this engine.
std::optional<bool> position_reached(const std::string& engine, const std::string& token,
                                     const ChannelStatus& replayed);

}  // namespace lagwatch
