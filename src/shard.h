// Sharding a fleet over several lagwatch instances with no coordination: rendezvous
// (highest-random-weight) hashing of the cluster name picks the one shard that watches it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "config.h"

namespace lagwatch {

// The shard (0..count-1) that watches `cluster`. Adding a shard moves only the clusters
// the new shard wins; names hash the same on every machine and build.
int shard_of(std::string_view cluster, int count);

// Keeps only the clusters of shard `config.server.shard_index` of `shard_count`.
void keep_own_shard(Config& config);

}  // namespace lagwatch
