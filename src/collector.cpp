// Collector registry (see collector.h).
#include "collector.h"

#include <stdexcept>

namespace lagwatch {

void CollectorRegistry::add(const std::string& engine, CollectorFactory factory) {
  factories_[engine] = std::move(factory);
}

bool CollectorRegistry::has(const std::string& engine) const { return factories_.contains(engine); }

std::vector<std::string> CollectorRegistry::engines() const {
  std::vector<std::string> names;
  for (const auto& [name, _] : factories_) names.push_back(name);
  return names;
}

std::unique_ptr<Collector> CollectorRegistry::create(const std::string& engine,
                                                     const CollectorContext& context) const {
  auto it = factories_.find(engine);
  if (it == factories_.end()) throw std::out_of_range("no collector for engine \"" + engine + "\"");
  return it->second(context);
}

void CollectorRegistry::add_heartbeat(const std::string& engine, HeartbeatSinkFactory factory) {
  heartbeats_[engine] = std::move(factory);
}

std::unique_ptr<HeartbeatSink> CollectorRegistry::create_heartbeat(
    const std::string& engine, const CollectorContext& context) const {
  auto it = heartbeats_.find(engine);
  if (it == heartbeats_.end())
    throw std::out_of_range("no heartbeat writer for engine \"" + engine + "\"");
  return it->second(context);
}

}  // namespace lagwatch
