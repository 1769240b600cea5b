// Routing policy (see routing.h).
#include "routing.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cctype>

namespace lagwatch {

bool qualifies(const NodeStatus& node, const RoutingConfig& routing) {
  if (!node.up || node.role != Role::replica) return false;
  const ChannelStatus* c = node.main();
  if (c == nullptr || !c->lag_seconds) return false;
  if (c->connected && !*c->connected) return false;
  // Replay stopped (paused, SQL thread stopped) while behind the primary: the replica falls
  // further behind every second and cannot catch up by itself, so it leaves now rather
  // than when its lag reaches max_lag_seconds. One stopped but caught up (an idle primary)
  // serves current data and stays.
  if (c->applying && !*c->applying &&
      (*c->lag_seconds > 0 || (c->lag_bytes && *c->lag_bytes > 0)))
    return false;
  if (routing.max_lag_seconds && *c->lag_seconds > *routing.max_lag_seconds) return false;
  if (routing.max_lag_bytes && (!c->lag_bytes || *c->lag_bytes > routing.max_lag_bytes->value))
    return false;
  return true;
}

int replica_weight(const NodeStatus& node, const RoutingConfig& routing, bool degraded) {
  if (degraded) return 1;
  const ChannelStatus* c = node.main();
  if (c == nullptr || !c->lag_seconds || !routing.max_lag_seconds || *routing.max_lag_seconds <= 0)
    return 100;
  double share = std::clamp(*c->lag_seconds / *routing.max_lag_seconds, 0.0, 1.0);
  return static_cast<int>(std::lround(100.0 - 90.0 * share));
}

namespace {

ReplicaListEntry entry_for(const NodeStatus& node, const RoutingConfig& routing, bool degraded) {
  ReplicaListEntry e;
  e.node = node.name;
  e.address = node.address;
  e.state = node.state;
  if (const ChannelStatus* c = node.main()) {
    e.lag_seconds = c->lag_seconds;
    e.lag_bytes = c->lag_bytes;
    e.position = c->position;
    e.gtid_position = c->gtid_position;
    e.position_sampled_at = c->position_sampled_at;
  }
  e.weight = replica_weight(node, routing, degraded);
  e.degraded = degraded;
  return e;
}

}  // namespace

void apply_routing(ClusterSnapshot& snap, const RoutingConfig& routing,
                   std::map<std::string, RoutingMemory>& memory) {
  std::map<std::string, RoutingMemory> next;
  std::vector<NodeStatus*> keep_candidates;
  ReplicaList& list = snap.list;
  list.replicas.clear();

  for (auto& node : snap.nodes) {
    bool good = qualifies(node, routing);
    auto known = memory.find(node.name);
    RoutingMemory m;
    if (known == memory.end()) {
      // First sight (start or reload): trust the sample rather than wait `rise` cycles with
      // an empty pool.
      m.listed = good;
    } else {
      m = known->second;
      if (m.listed) {
        m.bad_streak = good ? 0 : m.bad_streak + 1;
        if (m.bad_streak >= routing.fall) m = {false, 0, 0};
      } else {
        m.good_streak = good ? m.good_streak + 1 : 0;
        if (m.good_streak >= routing.rise) m = {true, 0, 0};
      }
    }
    // A node that is not a reachable replica leaves the list at once, whatever `fall` says:
    // there is nothing to send reads to.
    if (!node.up || node.role != Role::replica) m = {false, 0, 0};
    next[node.name] = m;
    node.routable = m.listed;
    if (m.listed)
      list.replicas.push_back(entry_for(node, routing, false));
    else if (node.up && node.role == Role::replica && node.main() && node.main()->lag_seconds)
      keep_candidates.push_back(&node);
  }
  memory = std::move(next);

  // min_serving: fill up with the least-lagged reachable replicas, flagged degraded.
  std::stable_sort(keep_candidates.begin(), keep_candidates.end(),
                   [](const NodeStatus* a, const NodeStatus* b) {
                     return *a->main()->lag_seconds < *b->main()->lag_seconds;
                   });
  std::size_t wanted = static_cast<std::size_t>(std::max(0, routing.min_serving));
  std::vector<std::string> kept;
  for (NodeStatus* node : keep_candidates) {
    if (list.replicas.size() + kept.size() >= wanted) break;
    node->routable = true;
    kept.push_back(node->name);
  }
  if (!kept.empty()) {
    list.fallback = "degraded";
    // Config order, so the list's order changes only with its membership.
    list.replicas.clear();
    for (const auto& node : snap.nodes) {
      bool degraded = std::find(kept.begin(), kept.end(), node.name) != kept.end();
      if (node.routable) list.replicas.push_back(entry_for(node, routing, degraded));
    }
  } else {
    list.fallback = "none";
  }

  list.primary.reset();
  if (snap.primaries == 1) {
    for (const auto& node : snap.nodes)
      if (node.name == snap.primary)
        list.primary = ReplicaList::Primary{node.name, node.address, node.position, node.gtid_position};
  }
  if (list.replicas.empty() && routing.fallback_to_primary && list.primary) list.fallback = "primary";
}

std::uint64_t next_generation(const ReplicaList& previous, const ReplicaList& list, WallTime now) {
  auto same = [&] {
    if (previous.generation == 0) return false;
    if (previous.fallback != list.fallback) return false;
    if (previous.primary.has_value() != list.primary.has_value()) return false;
    if (previous.primary && previous.primary->node != list.primary->node) return false;
    if (previous.replicas.size() != list.replicas.size()) return false;
    for (std::size_t i = 0; i < list.replicas.size(); ++i)
      if (previous.replicas[i].node != list.replicas[i].node ||
          previous.replicas[i].degraded != list.replicas[i].degraded)
        return false;
    return true;
  }();
  if (same) return previous.generation;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  return std::max<std::uint64_t>(previous.generation + 1, static_cast<std::uint64_t>(std::max<long long>(ms, 0)));
}

namespace {

bool parse_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    auto pos = s.find(sep, start);
    out.push_back(s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// MariaDB: "domain-server-seq" per domain. Returns domain → seq.
std::optional<std::map<std::uint64_t, std::uint64_t>> mariadb_gtids(std::string_view text) {
  std::map<std::uint64_t, std::uint64_t> out;
  if (trim(text).empty()) return out;
  for (auto part : split(text, ',')) {
    auto fields = split(trim(part), '-');
    std::uint64_t domain = 0, server = 0, seq = 0;
    if (fields.size() != 3 || !parse_u64(fields[0], domain) || !parse_u64(fields[1], server) ||
        !parse_u64(fields[2], seq))
      return std::nullopt;
    out[domain] = std::max(out[domain], seq);
  }
  return out;
}

using Intervals = std::vector<std::pair<std::uint64_t, std::uint64_t>>;

// MySQL: "uuid:1-5:7,uuid2:1-3" → uuid → intervals.
std::optional<std::map<std::string, Intervals>> mysql_gtids(std::string_view text) {
  std::map<std::string, Intervals> out;
  if (trim(text).empty()) return out;
  for (auto part : split(text, ',')) {
    auto fields = split(trim(part), ':');
    if (fields.size() < 2 || fields[0].size() != 36) return std::nullopt;
    std::string uuid(fields[0]);
    for (auto& ch : uuid) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    for (std::size_t i = 1; i < fields.size(); ++i) {
      auto range = split(fields[i], '-');
      std::uint64_t lo = 0, hi = 0;
      if (range.size() == 1 && parse_u64(range[0], lo)) {
        hi = lo;
      } else if (range.size() != 2 || !parse_u64(range[0], lo) || !parse_u64(range[1], hi) || hi < lo) {
        return std::nullopt;
      }
      out[uuid].push_back({lo, hi});
    }
  }
  return out;
}

bool contains(const Intervals& have, std::pair<std::uint64_t, std::uint64_t> want) {
  return std::any_of(have.begin(), have.end(), [&](const auto& iv) {
    return iv.first <= want.first && want.second <= iv.second;
  });
}

}  // namespace

std::optional<bool> position_reached(const std::string& engine, const std::string& token,
                                     const ChannelStatus& replayed) {
  if (engine == "postgres") {
    auto want = parse_pg_lsn(std::string(trim(token)));
    if (!want) return std::nullopt;
    return replayed.position && *replayed.position >= *want;
  }
  if (auto want = mariadb_gtids(token)) {
    auto have = mariadb_gtids(replayed.gtid_position);
    if (!have) return false;
    for (const auto& [domain, seq] : *want) {
      auto it = have->find(domain);
      if (it == have->end() || it->second < seq) return false;
    }
    return true;
  }
  if (auto want = mysql_gtids(token)) {
    auto have = mysql_gtids(replayed.gtid_position);
    if (!have) return false;
    for (const auto& [uuid, intervals] : *want) {
      auto it = have->find(uuid);
      for (const auto& iv : intervals)
        if (it == have->end() || !contains(it->second, iv)) return false;
    }
    return true;
  }
  return std::nullopt;
}

}  // namespace lagwatch
