// HAProxy agent-check responder (placeholder; being implemented).
#include "agent_check.h"

#include <stdexcept>

namespace lagwatch {

struct AgentCheckServer::Impl {};
AgentCheckServer::AgentCheckServer(const std::string&, const SnapshotStore&) {
  throw std::runtime_error("agent_listen is not implemented yet");
}
AgentCheckServer::~AgentCheckServer() = default;
void AgentCheckServer::start() {}
void AgentCheckServer::stop() {}
std::uint16_t AgentCheckServer::port() const { return 0; }

}  // namespace lagwatch
