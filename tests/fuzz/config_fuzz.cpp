// Fuzzes the config loader with TOML text: parse_config (what load_config, --check-config and
// a reload run), then what --check-config adds: each node's collector built from its DSN
// (nothing connects) and sharding. ConfigError is the expected answer to a bad config, and so
// is a std::exception from a collector refusing a DSN (main.cpp turns it into a ConfigError).
// Anything else thrown, a crash or a sanitizer report is a finding.
//
// The loader reads the secret and TLS files a config names (never writes): relative paths
// are taken from a directory that does not exist, and inputs naming device or kernel files
// are skipped, so a fuzzed password_file cannot block on /dev/stdin or read /dev/zero forever.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string_view>

#include "builtin.h"
#include "collector.h"
#include "config.h"
#include "shard.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lagwatch;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (std::string_view special : {"/dev", "/proc", "/sys"}) {
    if (text.find(special) != std::string_view::npos) return 0;
  }
  static const CollectorRegistry registry = [] {
    CollectorRegistry r;
    register_builtin_collectors(r);
    return r;
  }();

  try {
    Config config = parse_config(text, "/nonexistent/lagwatch.toml");
    for (const auto& cluster : config.clusters) {
      if (!registry.has(cluster.engine)) continue;
      for (const auto& node : cluster.nodes) {
        try {
          registry.create(cluster.engine, {&cluster, &node, cluster.timeout});
        } catch (const std::exception&) {
        }
      }
    }
    keep_own_shard(config);
  } catch (const ConfigError&) {
  }
  return 0;
}
