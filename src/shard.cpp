// Rendezvous hashing of cluster names (see shard.h).
#include "shard.h"

#include <algorithm>

namespace lagwatch {
namespace {

// FNV-1a, then a 64-bit finalizer (splitmix64) so nearby inputs spread over the whole range.
std::uint64_t stable_hash(std::string_view text, std::uint64_t seed) {
  std::uint64_t h = 14695981039346656037ull ^ seed;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

}  // namespace

int shard_of(std::string_view cluster, int count) {
  int best = 0;
  std::uint64_t best_weight = 0;
  for (int shard = 0; shard < count; ++shard) {
    std::uint64_t weight = stable_hash(cluster, static_cast<std::uint64_t>(shard) + 1);
    if (shard == 0 || weight > best_weight) {
      best = shard;
      best_weight = weight;
    }
  }
  return best;
}

void keep_own_shard(Config& config) {
  if (config.server.shard_count <= 1) return;
  std::erase_if(config.clusters, [&](const ClusterConfig& c) {
    return shard_of(c.name, config.server.shard_count) != config.server.shard_index;
  });
}

}  // namespace lagwatch
