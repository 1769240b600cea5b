// Metric rendering (see metrics.h). Names and labels are the contract of design §3.
#include "metrics.h"

#include <prometheus/text_serializer.h>

#include <iterator>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string_view>

#include "revision.h"

namespace lagwatch {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

// Families in a fixed order, created on first use, so every scrape lists them the same way.
class FamilySet {
 public:
  MetricFamily& family(const std::string& name, const std::string& help, MetricType type) {
    for (auto& f : families_)
      if (f.name == name) return f;
    families_.push_back({name, help, type, {}});
    return families_.back();
  }

  void gauge(const std::string& name, const std::string& help, Labels labels, double value) {
    ClientMetric m;
    m.label = std::move(labels);
    m.gauge.value = value;
    family(name, help, MetricType::Gauge).metric.push_back(std::move(m));
  }

  void counter(const std::string& name, const std::string& help, Labels labels, double value) {
    ClientMetric m;
    m.label = std::move(labels);
    m.counter.value = value;
    family(name, help, MetricType::Counter).metric.push_back(std::move(m));
  }

  // A stateset: one series per state, 1 for the current one.
  void stateset(const std::string& name, const std::string& help, const Labels& labels,
                const std::string& label, const std::vector<std::string>& states,
                const std::string& current) {
    for (const auto& s : states) {
      Labels l = labels;
      l.push_back({label, s});
      gauge(name, help, std::move(l), s == current ? 1 : 0);
    }
  }

  std::vector<MetricFamily> take() {
    std::erase_if(families_, [](const MetricFamily& f) { return f.metric.empty(); });
    return std::move(families_);
  }

 private:
  std::vector<MetricFamily> families_;
};

Labels with(Labels labels, std::string name, std::string value) {
  labels.push_back({std::move(name), std::move(value)});
  return labels;
}

void render_replica(FamilySet& f, const Labels& node_labels, const NodeStatus& node,
                    const std::string& engine) {
  for (const auto& c : node.channels) {
    // The channel label appears only for MySQL's named channels (multi-source).
    Labels l = c.name.empty() ? node_labels : with(node_labels, "channel", c.name);
    if (c.lag_seconds)
      f.gauge("lagwatch_replica_lag_seconds",
              "Measured replication lag: how long ago the primary was at the position this "
              "replica has replayed. Absent when unknown.",
              l, *c.lag_seconds);
    if (c.lag_bytes)
      f.gauge("lagwatch_replica_lag_bytes",
              "Bytes of the primary's WAL/binlog not yet replayed by this replica.", l,
              static_cast<double>(*c.lag_bytes));
    if (c.lag_seconds)
      f.gauge("lagwatch_replica_lag_fallback",
              "1 when lagwatch_replica_lag_seconds is the engine's own figure because the "
              "primary could not be sampled this cycle; 0 when it is measured.",
              l, c.lag_from_engine ? 1 : 0);
    if (c.heartbeat_lag_seconds)
      f.gauge("lagwatch_replica_heartbeat_lag_seconds",
              "Heartbeat lag: time since the newest heartbeat visible on this replica was "
              "written on the primary. Only for clusters with a heartbeat.",
              l, *c.heartbeat_lag_seconds);
    if (c.reported_lag_seconds)
      f.gauge("lagwatch_replica_reported_lag_seconds",
              "The engine's own lag figure (PostgreSQL: now() - pg_last_xact_replay_timestamp(); "
              "MySQL: Seconds_Behind_Source), for comparison.",
              l, *c.reported_lag_seconds);
    if (c.apply_delay_seconds)
      f.gauge("lagwatch_replica_apply_delay_seconds",
              "Configured apply delay (recovery_min_apply_delay / SQL_Delay).", l,
              *c.apply_delay_seconds);
    if (c.connected)
      f.gauge("lagwatch_replica_connected",
              "1 if the replica's stream from its primary is up (WAL receiver streaming / IO "
              "thread running).",
              l, *c.connected ? 1 : 0);
    if (c.applying)
      f.gauge("lagwatch_replica_applying",
              "1 if replay / the SQL thread runs (not paused or stopped).", l, *c.applying ? 1 : 0);
    if (engine == "mysql") {
      // Numbers only: the error text is in the log and the API, never in a label.
      f.gauge("lagwatch_replica_last_io_errno",
              "Last_IO_Errno of the replication channel (0: no error).", l,
              static_cast<double>(c.last_io_errno));
      f.gauge("lagwatch_replica_last_sql_errno",
              "Last_SQL_Errno of the replication channel (0: no error).", l,
              static_cast<double>(c.last_sql_errno));
    }
  }
  if (node.stage) {
    const auto& s = *node.stage;
    const char* help_s =
        "The primary's view of this standby (pg_stat_replication write_lag, flush_lag, "
        "replay_lag).";
    const char* help_b = "Bytes between the primary's current WAL position and the position "
                         "this standby has sent, written, flushed, replayed, as the primary sees it.";
    auto seconds = [&](const char* stage, const std::optional<double>& v) {
      if (v) f.gauge("lagwatch_replica_stage_lag_seconds", help_s, with(node_labels, "stage", stage), *v);
    };
    auto bytes = [&](const char* stage, const std::optional<std::uint64_t>& v) {
      if (v)
        f.gauge("lagwatch_replica_stage_lag_bytes", help_b, with(node_labels, "stage", stage),
                static_cast<double>(*v));
    };
    seconds("write", s.write_seconds);
    seconds("flush", s.flush_seconds);
    seconds("replay", s.replay_seconds);
    bytes("sent", s.sent_bytes);
    bytes("write", s.write_bytes);
    bytes("flush", s.flush_bytes);
    bytes("replay", s.replay_bytes);
  }
  f.gauge("lagwatch_replica_routable",
          "1 if the replica is in the lag-aware replica list now (degraded keepers included).",
          node_labels, node.routable ? 1 : 0);
  f.stateset("lagwatch_replica_state",
             "Replica health after thresholds: ok, warning, critical, or unknown (unreachable "
             "or lag unknown).",
             node_labels, "state", {"ok", "warning", "critical", "unknown"},
             health_name(node.state));
  const auto& t = node.thresholds;
  const char* help_ts = "Lag-seconds threshold in force for this replica, by severity.";
  const char* help_tb = "Lag-bytes threshold in force for this replica, by severity.";
  if (t.lag_seconds_warning)
    f.gauge("lagwatch_threshold_seconds", help_ts, with(node_labels, "severity", "warning"),
            *t.lag_seconds_warning);
  if (t.lag_seconds_critical)
    f.gauge("lagwatch_threshold_seconds", help_ts, with(node_labels, "severity", "critical"),
            *t.lag_seconds_critical);
  if (t.lag_bytes_warning)
    f.gauge("lagwatch_threshold_bytes", help_tb, with(node_labels, "severity", "warning"),
            static_cast<double>(t.lag_bytes_warning->value));
  if (t.lag_bytes_critical)
    f.gauge("lagwatch_threshold_bytes", help_tb, with(node_labels, "severity", "critical"),
            static_cast<double>(t.lag_bytes_critical->value));
}

void render_collection_stats(FamilySet& f, const Labels& node_labels, const CollectionStats& s) {
  ClientMetric m;
  m.label = node_labels;
  m.histogram.sample_count = s.count;
  m.histogram.sample_sum = s.sum_seconds;
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < CollectionStats::kBuckets.size(); ++i) {
    cumulative += s.bucket_counts[i];
    m.histogram.bucket.push_back({cumulative, CollectionStats::kBuckets[i]});
  }
  m.histogram.bucket.push_back({s.count, std::numeric_limits<double>::infinity()});
  f.family("lagwatch_collection_duration_seconds", "Time one collection of a node took.",
           MetricType::Histogram)
      .metric.push_back(std::move(m));
  for (auto reason : {CollectionError::timeout, CollectionError::connect, CollectionError::query,
                      CollectionError::auth})
    f.counter("lagwatch_collection_errors_total", "Failed collections of a node, by reason.",
              with(node_labels, "reason", error_reason(reason)),
              static_cast<double>(s.errors[static_cast<std::size_t>(reason)]));
}

void render_build_info(FamilySet& f) {
  f.gauge("lagwatch_build_info", "lagwatch's version and source revision; always 1.",
          {{"version", LAGWATCH_VERSION}, {"revision", kSourceRevision}}, 1);
}

void render_cluster(FamilySet& f, const ClusterSnapshot& snap) {
  Labels cluster_labels{{"cluster", snap.name}, {"engine", snap.engine}};
  f.gauge("lagwatch_cluster_primaries",
          "Writable primaries seen in the last cycle; anything but 1 is critical "
          "(0: no primary, 2 or more: split-brain).",
          cluster_labels, snap.primaries);
  f.gauge("lagwatch_cluster_routable_replicas", "Replicas in the cluster's replica list now.",
          cluster_labels, static_cast<double>(snap.list.replicas.size()));
  f.gauge("lagwatch_cluster_list_generation",
          "Generation of the cluster's replica list; changes whenever its membership does.",
          cluster_labels, static_cast<double>(snap.list.generation));
  f.gauge("lagwatch_cluster_last_cycle_timestamp_seconds",
          "When the cluster's last collection cycle was evaluated (Unix time).", cluster_labels,
          std::chrono::duration<double>(snap.evaluated_at.time_since_epoch()).count());
  for (const auto& node : snap.nodes) {
    Labels l{{"cluster", snap.name}, {"node", node.name}, {"engine", snap.engine}};
    f.gauge("lagwatch_node_up", "1 if the last collection of the node succeeded.", l,
            node.up ? 1 : 0);
    f.stateset("lagwatch_node_role", "Observed role of the node: primary, replica, or unknown.",
               l, "role", {"primary", "replica", "unknown"}, role_name(node.role));
    if (node.is_replica_side()) render_replica(f, l, node, snap.engine);
    render_collection_stats(f, l, node.stats);
  }
}

std::string to_text(const std::vector<MetricFamily>& families) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace

std::vector<MetricFamily> render_metrics(
    const std::vector<std::shared_ptr<const ClusterSnapshot>>& snapshots) {
  FamilySet f;
  render_build_info(f);
  for (const auto& snap : snapshots) render_cluster(f, *snap);
  return f.take();
}

std::shared_ptr<const MetricsText::Rendered> MetricsText::render(
    std::shared_ptr<const ClusterSnapshot> snapshot) {
  FamilySet f;
  render_cluster(f, *snapshot);
  auto out = std::make_shared<Rendered>();
  out->snapshot = std::move(snapshot);
  for (auto& family : f.take()) {
    auto text = to_text({family});
    // The serializer writes a family's "# HELP" and "# TYPE" lines first, then its samples.
    auto type_line = text.find("\n# TYPE " + family.name + " ");
    auto samples = type_line == std::string::npos ? type_line : text.find('\n', type_line + 1);
    if (samples == std::string::npos) throw std::logic_error("metric family text without its header");
    ++samples;
    out->families.push_back({family.name, text.substr(0, samples), text.substr(samples)});
  }
  return out;
}

void MetricsText::on_publish(const std::shared_ptr<const ClusterSnapshot>& snapshot) {
  // Superseded already, or its cluster removed: nothing a scrape would use.
  if (store_.get(snapshot->name) != snapshot) return;
  auto rendered = render(snapshot);
  std::lock_guard lock(mutex_);
  rendered_[snapshot->name] = std::move(rendered);
}

std::vector<std::shared_ptr<const std::string>> MetricsText::pieces(
    const std::vector<const prometheus::Collectable*>& extra) const {
  static const auto build_info = [] {
    FamilySet f;
    render_build_info(f);
    return std::make_shared<const std::string>(to_text(f.take()));
  }();
  std::vector<std::shared_ptr<const Rendered>> clusters;
  {
    std::lock_guard lock(mutex_);
    std::map<std::string, std::shared_ptr<const Rendered>> current;
    for (auto& snapshot : store_.all()) {
      auto it = rendered_.find(snapshot->name);
      auto r = it != rendered_.end() && it->second->snapshot == snapshot ? it->second
                                                                          : render(snapshot);
      clusters.push_back(r);
      current.emplace(snapshot->name, std::move(r));
    }
    rendered_ = std::move(current);  // clusters a reload removed are dropped
  }
  // Families in order of first appearance, each one's samples contiguous under one header,
  // as the text format requires: the order render_metrics gives. Each piece shares
  // ownership of its cluster's rendering (aliasing shared_ptr), so no text is copied.
  std::vector<std::vector<std::shared_ptr<const std::string>>> families;  // header, samples…
  std::map<std::string_view, std::size_t> index;                          // name → families
  for (const auto& c : clusters)
    for (const auto& family : c->families) {
      auto [it, first] = index.try_emplace(family.name, families.size());
      if (first) families.push_back({{c, &family.header}});
      families[it->second].emplace_back(c, &family.samples);
    }
  std::vector<std::shared_ptr<const std::string>> out{build_info};
  for (auto& parts : families)
    for (auto& p : parts) out.push_back(std::move(p));
  std::vector<MetricFamily> more;
  for (const auto* c : extra) {
    auto collected = c->Collect();
    std::move(collected.begin(), collected.end(), std::back_inserter(more));
  }
  out.push_back(std::make_shared<const std::string>(to_text(more)));
  return out;
}

std::string MetricsText::serialize(const std::vector<const prometheus::Collectable*>& extra) const {
  std::string out;
  for (const auto& p : pieces(extra)) out += *p;
  return out;
}

}  // namespace lagwatch
