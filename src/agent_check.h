// HAProxy agent-check responder (placeholder interface; being implemented).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "snapshot_store.h"

namespace lagwatch {

class AgentCheckServer {
 public:
  // Binds at once; throws std::runtime_error naming the address if it cannot.
  AgentCheckServer(const std::string& listen, const SnapshotStore& store);
  ~AgentCheckServer();
  void start();
  void stop();
  std::uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lagwatch
