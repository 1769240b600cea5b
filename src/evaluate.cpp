// Evaluation of a cluster's cycle (see evaluate.h): lag by positions, health by thresholds.
#include "evaluate.h"

#include <algorithm>

#include "units.h"

namespace lagwatch {

const char* role_name(Role role) {
  switch (role) {
    case Role::primary: return "primary";
    case Role::replica: return "replica";
    case Role::unknown: break;
  }
  return "unknown";
}

const char* error_reason(CollectionError error) {
  switch (error) {
    case CollectionError::none: return "none";
    case CollectionError::timeout: return "timeout";
    case CollectionError::connect: return "connect";
    case CollectionError::auth: return "auth";
    case CollectionError::query: return "query";
  }
  return "query";
}

const char* health_name(Health health) {
  switch (health) {
    case Health::ok: return "ok";
    case Health::warning: return "warning";
    case Health::critical: return "critical";
    case Health::unknown: break;
  }
  return "unknown";
}

void CollectionStats::observe(double seconds, CollectionError error) {
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) {
      ++bucket_counts[i];
      break;
    }
  }
  ++count;
  sum_seconds += seconds;
  if (error != CollectionError::none) ++errors[static_cast<std::size_t>(error)];
}

Health replica_health(const ChannelStatus& channel, bool node_up, const Thresholds& t) {
  if (!node_up) return Health::unknown;
  // A broken stream is critical at once: whatever the lag reads now, it can only grow.
  if (channel.connected && !*channel.connected) return Health::critical;
  if (!channel.lag_seconds && !channel.lag_bytes) return Health::unknown;
  auto over = [&](const std::optional<double>& seconds_level,
                  const std::optional<Bytes>& bytes_level) {
    return (channel.lag_seconds && seconds_level && *channel.lag_seconds > *seconds_level) ||
           (channel.lag_bytes && bytes_level && *channel.lag_bytes > bytes_level->value);
  };
  if (over(t.lag_seconds_critical, t.lag_bytes_critical)) return Health::critical;
  if (over(t.lag_seconds_warning, t.lag_bytes_warning)) return Health::warning;
  return Health::ok;
}

namespace {

// The primary lag is measured against: the previous one while it is still a writable
// primary (so a split-brain does not flip the reference every cycle), else the first
// writable primary in config order.
int pick_reference_primary(const ClusterConfig& cluster, const std::vector<NodeSample>& samples,
                           const std::string& previous) {
  int first = -1;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const auto& s = samples[i];
    if (!s.up() || s.role != Role::primary || !s.writable || !s.current_position) continue;
    if (cluster.nodes[i].name == previous) return static_cast<int>(i);
    if (first < 0) first = static_cast<int>(i);
  }
  return first;
}

const StandbyStream* find_standby(const NodeSample* primary, const std::string& application_name) {
  if (primary == nullptr) return nullptr;
  for (const auto& s : primary->standbys)
    if (s.application_name == application_name) return &s;
  return nullptr;
}

std::optional<std::uint64_t> distance(const std::optional<Position>& from, const NodeSample& primary) {
  if (!from || !primary.current_position) return std::nullopt;
  return bytes_between(*from, *primary.current_position, primary.segments);
}

StageLag stage_lag(const StandbyStream& s, const NodeSample& primary) {
  StageLag stage;
  stage.write_seconds = s.write_lag_seconds;
  stage.flush_seconds = s.flush_lag_seconds;
  stage.replay_seconds = s.replay_lag_seconds;
  stage.sent_bytes = distance(s.sent, primary);
  stage.write_bytes = distance(s.write, primary);
  stage.flush_bytes = distance(s.flush, primary);
  stage.replay_bytes = distance(s.replay, primary);
  return stage;
}

// The channel that replicates from the cluster's primary: the only one, or the one whose
// source is the primary's address (MySQL multi-source). -1 when none is.
int find_main_channel(const NodeSample& replica, const std::string& primary_address) {
  if (replica.channels.size() == 1) return 0;
  for (std::size_t i = 0; i < replica.channels.size(); ++i)
    if (!primary_address.empty() && replica.channels[i].source == primary_address)
      return static_cast<int>(i);
  return -1;
}

ChannelStatus measure_channel(const ReplicationChannel& c, const NodeSample& replica,
                              const NodeSample* primary, const PositionTimeline& timeline) {
  ChannelStatus out;
  out.position_sampled_at = replica.sampled_at;
  out.gtid_position = c.gtid_position;
  out.name = c.name;
  out.reported_lag_seconds = c.reported_lag_seconds;
  out.connected = c.connected;
  out.applying = c.applying;
  out.apply_delay_seconds = c.apply_delay_seconds;
  out.position = c.replayed;
  out.source = c.source;
  out.last_io_errno = c.last_io_errno;
  out.last_sql_errno = c.last_sql_errno;
  out.last_error = c.last_error;
  if (primary != nullptr && c.replayed) {
    out.lag_bytes = distance(c.replayed, *primary);
    if (auto lag = timeline.lag(*c.replayed, replica.sampled_at)) {
      out.lag_seconds = to_seconds(lag->lag);
      out.lag_beyond_horizon = lag->beyond_horizon;
    }
  } else if (c.reported_lag_seconds) {
    // Without the primary's position this cycle there is nothing to measure against; the
    // engine's own figure is the best there is, and lag_from_engine says so.
    out.lag_seconds = c.reported_lag_seconds;
    out.lag_from_engine = true;
  }
  return out;
}

}  // namespace

ClusterSnapshot evaluate_cluster(const ClusterConfig& cluster, const std::vector<NodeSample>& samples,
                                 const std::vector<CollectionStats>& stats, ClusterHistory& history,
                                 std::uint64_t cycle, WallTime now) {
  ClusterSnapshot snap;
  snap.name = cluster.name;
  snap.engine = cluster.engine;
  snap.cycle = cycle;
  snap.evaluated_at = now;

  for (const auto& s : samples)
    if (s.up() && s.role == Role::primary && s.writable) ++snap.primaries;

  int ref = pick_reference_primary(cluster, samples, history.reference_primary);
  const NodeSample* primary = ref >= 0 ? &samples[static_cast<std::size_t>(ref)] : nullptr;
  if (primary != nullptr) {
    history.reference_primary = cluster.nodes[static_cast<std::size_t>(ref)].name;
    history.timeline.record(history.reference_primary, primary->sampled_at,
                            *primary->current_position);
    snap.primary = history.reference_primary;
  }

  for (std::size_t i = 0; i < cluster.nodes.size(); ++i) {
    const auto& cfg = cluster.nodes[i];
    const auto& sample = samples[i];
    NodeStatus node;
    node.name = cfg.name;
    node.address = cfg.address;
    node.up = sample.up();
    node.error = sample.error;
    node.error_message = sample.error_message;
    node.role = sample.up() ? sample.role : Role::unknown;
    node.writable = sample.up() && sample.writable;
    node.sampled_at = sample.sampled_at;
    node.thresholds = cfg.thresholds;
    if (i < stats.size()) node.stats = stats[i];
    if (node.role == Role::primary) {
      node.position = sample.current_position;
      node.gtid_position = sample.gtid_position;
      node.state = Health::ok;
      snap.nodes.push_back(std::move(node));
      continue;
    }
    const StandbyStream* standby = find_standby(primary, cfg.application_name);
    if (standby != nullptr) node.stage = stage_lag(*standby, *primary);
    if (node.up) {
      node.main_channel = find_main_channel(sample, ref >= 0 ? cluster.nodes[static_cast<std::size_t>(ref)].address : "");
      for (std::size_t c = 0; c < sample.channels.size(); ++c) {
        // Other channels of a multi-source replica replicate from outside this cluster:
        // there is no primary here to measure them against, only the engine's figure.
        bool from_primary = static_cast<int>(c) == node.main_channel;
        node.channels.push_back(measure_channel(sample.channels[c], sample,
                                                from_primary ? primary : nullptr, history.timeline));
        if (from_primary) {
          auto& ch = node.channels.back();
          // The heartbeat was written on the writer's clock (lagwatch's own in write mode)
          // and is read back at this sample: never negative.
          if (sample.heartbeat_at)
            ch.heartbeat_lag_seconds =
                std::max(0.0, to_seconds(sample.sampled_at - *sample.heartbeat_at));
          ch.heartbeat_error = sample.heartbeat_error;
        }
      }
    } else if (primary != nullptr && cluster.engine == "postgres") {
      // The node cannot say whether it streams; the primary can: not in
      // pg_stat_replication means not connected.
      ChannelStatus c;
      c.connected = standby != nullptr;
      node.channels.push_back(std::move(c));
      node.main_channel = 0;
    }
    Health worst = node.up ? Health::ok : Health::unknown;
    if (node.up && node.channels.empty()) worst = Health::unknown;
    for (auto& c : node.channels) {
      c.state = replica_health(c, node.up, node.thresholds);
      if (c.state == Health::unknown || worst == Health::unknown)
        worst = Health::unknown;
      else
        worst = std::max(worst, c.state);
    }
    // critical beats unknown: a disconnected stream on a reachable node is known bad.
    for (const auto& c : node.channels)
      if (c.state == Health::critical) worst = Health::critical;
    node.state = worst;
    snap.nodes.push_back(std::move(node));
  }

  snap.state = snap.primaries == 1 ? Health::ok : Health::critical;

  snap.fallback_to_primary = cluster.routing.fallback_to_primary;
  apply_routing(snap, cluster.routing, history.routing);
  snap.list.generation = next_generation(history.list, snap.list, now);
  snap.list.generated_at =
      snap.list.generation == history.list.generation ? history.list.generated_at : now;
  history.list = snap.list;
  return snap;
}

}  // namespace lagwatch
