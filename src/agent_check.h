// HAProxy agent-check responder: one TCP line in ("cluster/node\n"), one state line out.
//
// HAProxy's agent (server option `agent-check`) connects, sends its `agent-send` string and
// reads one line; the words it understands set the server's health (up/down), its
// administrative state (ready/drain) and its weight ("NN%" of the configured weight). A word
// it does not understand is ignored, so the wording here follows HAProxy's parser exactly:
// a bare percentage ("73%", not "weight:73%") and a space before a '#' description
// ("down #why", not "down#why").
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "snapshot.h"
#include "snapshot_store.h"

namespace lagwatch {

// The request, split. Valid names are non-empty and made of [A-Za-z0-9_.-].
struct AgentRequest {
  std::string cluster;
  std::string node;
};

// Parses one request line: "cluster/node", optionally followed by "\n" or "\r\n" and
// surrounded by blanks. nullopt when it is not of that form.
std::optional<AgentRequest> parse_agent_request(const std::string& request_line);

// The line to answer (without its newline). Always the full state, because HAProxy lets only
// the agent undo what the agent set:
//   listed in the replica list          "up ready NN%"  NN = the list entry's weight (10..100
//                                                       by lag; 1 for a degraded keeper)
//   reachable, not listed (lagging,     "drain"
//     rising, disconnected, a primary)
//   unreachable                         "down #unreachable: <reason>[: <message>]"
//   cluster has no cycle yet            "down #no data yet"
//   unknown cluster or node, malformed  "down #unknown cluster/node \"<request>\"..."
// `snapshot` is the latest snapshot of the cluster the request names (nullptr while it has no
// completed cycle); `cluster_known` is false when no cluster of that name is configured.
// Client bytes are echoed only sanitized: characters outside [A-Za-z0-9_.-/] become '?', and
// the echo is cut at 64 characters.
std::string agent_reply(const ClusterSnapshot* snapshot, const std::string& request_line,
                        bool cluster_known = true);

// Serves agent_reply() from the store's latest snapshots on one I/O thread; no thread per
// connection. Each connection gets one answer, then is closed: the request is read up to 256
// bytes or the first '\n', for at most 2 s (what arrived by then is answered).
class AgentCheckServer {
 public:
  // Binds at once; throws std::runtime_error naming the address if it cannot. `store` must
  // outlive the server.
  AgentCheckServer(const std::string& listen, const SnapshotStore& store);
  ~AgentCheckServer();  // stops and joins
  AgentCheckServer(const AgentCheckServer&) = delete;
  AgentCheckServer& operator=(const AgentCheckServer&) = delete;

  void start();  // starts the I/O thread; returns at once; does nothing after stop()
  void stop();   // closes the listener and every connection, joins the thread; idempotent
  std::uint16_t port() const;  // the bound port (useful with port 0)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lagwatch
