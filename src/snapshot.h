// The immutable result of evaluating one cluster's latest samples. /metrics, the API, router
// pushes and the notifier read snapshots; none of them touches a database.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "clock.h"
#include "config.h"
#include "position.h"
#include "sample.h"

namespace lagwatch {

enum class Health { ok, warning, critical, unknown };
const char* health_name(Health health);

// One replication stream of a replica as lagwatch measured it.
struct ChannelStatus {
  std::string name;  // "" for PostgreSQL and MySQL's default channel
  std::optional<double> lag_seconds;     // measured (design §2); absent when unknown
  std::optional<std::uint64_t> lag_bytes;
  // lag_seconds is the engine's own figure because the primary could not be sampled.
  bool lag_from_engine = false;
  // The replayed position is older than the timeline's horizon: lag_seconds is a lower bound.
  bool lag_beyond_horizon = false;
  std::optional<double> reported_lag_seconds;
  // Heartbeat lag: when the newest heartbeat visible on the replica was written; absent
  // without a heartbeat or when it cannot be read (heartbeat_error says why).
  std::optional<double> heartbeat_lag_seconds;
  std::string heartbeat_error;
  std::optional<bool> connected;
  std::optional<bool> applying;
  std::optional<double> apply_delay_seconds;
  std::optional<Position> position;  // replayed
  WallTime position_sampled_at{};
  std::string gtid_position;
  std::string source;
  std::int64_t last_io_errno = 0;
  std::int64_t last_sql_errno = 0;
  std::string last_error;
  Health state = Health::unknown;
};

// The primary's view of a standby (PostgreSQL pg_stat_replication).
struct StageLag {
  std::optional<double> write_seconds, flush_seconds, replay_seconds;
  std::optional<std::uint64_t> sent_bytes, write_bytes, flush_bytes, replay_bytes;
};

// Cumulative self-metrics of one node's collections.
struct CollectionStats {
  static constexpr std::array<double, 12> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,   0.25,   0.5,   1.0,  2.5,   5.0};
  std::array<std::uint64_t, kBuckets.size()> bucket_counts{};  // per bucket, not cumulative
  std::uint64_t count = 0;
  double sum_seconds = 0;
  std::array<std::uint64_t, 5> errors{};  // indexed by CollectionError

  void observe(double seconds, CollectionError error);
};

struct NodeStatus {
  std::string name;
  std::string address;
  bool up = false;
  CollectionError error = CollectionError::none;
  std::string error_message;
  Role role = Role::unknown;
  bool writable = false;
  WallTime sampled_at{};
  std::optional<Position> position;  // a primary's current write position
  std::vector<ChannelStatus> channels;  // replica side; empty on a primary
  std::optional<StageLag> stage;        // the primary's view of this node
  Thresholds thresholds;
  Health state = Health::unknown;  // worst channel state; ok on a healthy primary
  bool routable = false;           // in the replica list now (degraded keepers included)
  CollectionStats stats;
  std::string gtid_position;       // a primary's executed GTIDs (MySQL/MariaDB)
  // Index in `channels` of the stream from the cluster's primary, whose lag decides
  // routing; -1 when there is none.
  int main_channel = -1;

  bool is_replica_side() const { return role != Role::primary; }
  const ChannelStatus* main() const {
    return main_channel >= 0 ? &channels[static_cast<std::size_t>(main_channel)] : nullptr;
  }
};

struct ReplicaListEntry {
  std::string node;
  std::string address;
  Health state = Health::unknown;
  std::optional<double> lag_seconds;
  std::optional<std::uint64_t> lag_bytes;
  std::optional<Position> position;
  std::string gtid_position;
  WallTime position_sampled_at{};
  int weight = 100;
  bool degraded = false;  // kept only to honour min_serving
};

// The lag-aware replica list routers read (design §5).
struct ReplicaList {
  std::uint64_t generation = 0;
  WallTime generated_at{};  // when this generation was first produced
  struct Primary {
    std::string node;
    std::string address;
    std::optional<Position> position;
    std::string gtid_position;
  };
  std::optional<Primary> primary;  // absent with no primary, or in a split-brain
  std::vector<ReplicaListEntry> replicas;
  // "none"; "degraded" when min_serving keepers are listed; "primary" when no replica
  // qualifies and fallback_to_primary names the primary.
  std::string fallback = "none";
};

struct ClusterSnapshot {
  std::string name;
  std::string engine;
  std::uint64_t cycle = 0;  // 0: no cycle completed yet
  WallTime evaluated_at{};
  std::vector<NodeStatus> nodes;
  int primaries = 0;           // writable primaries seen this cycle
  std::string primary;         // the primary lag is measured against; "" when none
  Health state = Health::unknown;  // critical on split-brain or no primary
  ReplicaList list;
  bool fallback_to_primary = true;  // the cluster's routing setting, for filtered views
};

}  // namespace lagwatch
