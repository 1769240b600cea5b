// The collector interface and the registry of collectors by engine name.
// A collector holds one node's persistent connection and turns one round of queries into a
// NodeSample. Collectors are registered by explicit calls (register_builtin_collectors()).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "clock.h"
#include "config.h"
#include "sample.h"

namespace lagwatch {

class Collector {
 public:
  virtual ~Collector() = default;

  // Runs one collection. Connects first when there is no live connection; a failure leaves
  // the collector ready to reconnect on the next call. Must not throw: errors are reported in
  // the sample. Called from one worker thread at a time.
  virtual NodeSample collect(const Clock& clock) = 0;

  // Called from another thread when collect() overran its timeout: makes a blocked collect()
  // return soon (by shutting down the connection's socket) so the worker is freed. collect()
  // then reports a timeout and reconnects next time. Must be safe to call at any moment.
  virtual void abort() = 0;
};

struct CollectorContext {
  const ClusterConfig* cluster = nullptr;
  const NodeConfig* node = nullptr;
  std::chrono::nanoseconds timeout{};  // per collection, also used for connect and statements
};

using CollectorFactory = std::function<std::unique_ptr<Collector>(const CollectorContext&)>;

// Writes lagwatch's clock into the heartbeat table of one node (the primary), over a
// connection of its own. write() throws std::runtime_error with a message free of secrets.
class HeartbeatSink {
 public:
  virtual ~HeartbeatSink() = default;
  virtual void write(WallTime at) = 0;
};

using HeartbeatSinkFactory =
    std::function<std::unique_ptr<HeartbeatSink>(const CollectorContext&)>;

class CollectorRegistry {
 public:
  void add(const std::string& engine, CollectorFactory factory);
  bool has(const std::string& engine) const;
  std::vector<std::string> engines() const;
  // Throws std::out_of_range for an engine nobody registered.
  std::unique_ptr<Collector> create(const std::string& engine, const CollectorContext& context) const;

  void add_heartbeat(const std::string& engine, HeartbeatSinkFactory factory);
  // Throws std::out_of_range for an engine without a heartbeat writer.
  std::unique_ptr<HeartbeatSink> create_heartbeat(const std::string& engine,
                                                  const CollectorContext& context) const;

 private:
  std::map<std::string, CollectorFactory> factories_;
  std::map<std::string, HeartbeatSinkFactory> heartbeats_;
};

}  // namespace lagwatch
