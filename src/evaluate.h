// Evaluation: one cycle's samples of a cluster → its snapshot. Pure logic over value types;
// the only state carried between cycles is the cluster's position timeline.
#pragma once

#include <string>
#include <vector>

#include "config.h"
#include "sample.h"
#include "snapshot.h"
#include "routing.h"
#include "timeline.h"

namespace lagwatch {

struct ClusterHistory {
  PositionTimeline timeline;
  std::string reference_primary;  // the primary lag was last measured against
  std::map<std::string, RoutingMemory> routing;
  ReplicaList list;  // the previous cycle's list, for its generation
};

// `samples` are in the order of `cluster.nodes`; `stats` likewise (copied into the snapshot).
ClusterSnapshot evaluate_cluster(const ClusterConfig& cluster, const std::vector<NodeSample>& samples,
                                 const std::vector<CollectionStats>& stats, ClusterHistory& history,
                                 std::uint64_t cycle, WallTime now);

// Health of one replica stream from its lag and connectivity against the thresholds.
Health replica_health(const ChannelStatus& channel, bool node_up, const Thresholds& thresholds);

}  // namespace lagwatch
