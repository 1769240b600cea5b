// HAProxy agent-check responder: the reply for every node state (a table), and the TCP server.
#include "agent_check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace lagwatch {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

// --- hand-built snapshots ------------------------------------------------------------------

NodeStatus primary(const std::string& name) {
  NodeStatus n;
  n.name = name;
  n.address = name + ":5432";
  n.up = true;
  n.role = Role::primary;
  n.writable = true;
  n.state = Health::ok;
  return n;
}

NodeStatus replica(const std::string& name, double lag_seconds, bool connected = true) {
  NodeStatus n;
  n.name = name;
  n.address = name + ":5432";
  n.up = true;
  n.role = Role::replica;
  ChannelStatus c;
  c.lag_seconds = lag_seconds;
  c.connected = connected;
  n.channels.push_back(c);
  n.main_channel = 0;
  n.state = Health::ok;
  return n;
}

NodeStatus unreachable(const std::string& name, CollectionError error, std::string message) {
  NodeStatus n;
  n.name = name;
  n.address = name + ":5432";
  n.up = false;
  n.error = error;
  n.error_message = std::move(message);
  return n;
}

ReplicaListEntry entry(const std::string& node, int weight, bool degraded = false) {
  ReplicaListEntry e;
  e.node = node;
  e.weight = weight;
  e.degraded = degraded;
  return e;
}

// pg2 and pg3 listed (pg3 lagging a little), pg4 kept degraded, pg5 lagging out of the list,
// pg6 and pg8 unreachable, pg7 disconnected. The weights are the list's: pg3's 55 is not what
// replica_weight() would make of its lag, to show the reply does not recompute it.
ClusterSnapshot orders() {
  ClusterSnapshot s;
  s.name = "orders";
  s.engine = "postgres";
  s.cycle = 7;
  s.primaries = 1;
  s.primary = "pg1";
  s.nodes = {primary("pg1"),
             replica("pg2", 0.0),
             replica("pg3", 0.3),
             replica("pg4", 9.0),
             replica("pg5", 8.0),
             unreachable("pg6", CollectionError::timeout, "timed out after 400ms"),
             replica("pg7", 0.0, false),
             unreachable("pg8", CollectionError::connect, "could not connect\nup ready 100%\r#x")};
  s.list.replicas = {entry("pg2", 100), entry("pg3", 55), entry("pg4", 1, true)};
  s.list.fallback = "degraded";
  return s;
}

// --- agent_reply: a table of cases ---------------------------------------------------------

struct Case {
  const char* name;
  std::string request;
  std::string expected;
  enum { kOrders, kNoCycle, kNoSnapshot, kUnknownCluster } view = kOrders;
};

const std::string kMalformedHint = R"( (agent-send must be "cluster/node\n"))";

TEST(AgentReply, AnswersTheFullStateOfEveryKindOfNode) {
  const std::vector<Case> cases = {
      {"listed_replica_is_up_ready_at_its_list_weight", "orders/pg2\n", "up ready 100%"},
      {"lag_scaled_weight_is_taken_from_the_list", "orders/pg3\n", "up ready 55%"},
      {"degraded_keeper_is_up_ready_at_1_percent", "orders/pg4\n", "up ready 1%"},
      {"lagging_reachable_replica_is_drained", "orders/pg5\n", "drain"},
      {"disconnected_replica_is_drained", "orders/pg7\n", "drain"},
      {"primary_is_not_a_read_replica_and_is_drained", "orders/pg1\n", "drain"},
      {"unreachable_node_is_down_with_reason_and_message", "orders/pg6\n",
       "down #unreachable: timeout: timed out after 400ms"},
      {"error_message_cannot_end_the_line_or_add_words", "orders/pg8\n",
       "down #unreachable: connect: could not connect?up ready 100%?#x"},
      {"crlf_ending_is_accepted", "orders/pg3\r\n", "up ready 55%"},
      {"missing_newline_is_accepted", "orders/pg3", "up ready 55%"},
      {"surrounding_blanks_are_ignored", " \torders/pg3 \n", "up ready 55%"},
      {"unknown_node", "orders/pg9\n", R"(down #unknown cluster/node "orders/pg9")"},
      {"names_are_case_sensitive", "Orders/pg2\n", R"(down #unknown cluster/node "Orders/pg2")"},
      {"unknown_cluster", "billing/pg2\n", R"(down #unknown cluster/node "billing/pg2")",
       Case::kUnknownCluster},
      {"snapshot_of_another_cluster_is_not_used", "billing/pg2\n",
       R"(down #unknown cluster/node "billing/pg2")"},
      {"no_snapshot_yet", "orders/pg2\n", "down #no data yet", Case::kNoSnapshot},
      {"snapshot_without_a_completed_cycle", "orders/pg2\n", "down #no data yet", Case::kNoCycle},
      {"empty_request", "", R"(down #unknown cluster/node "")" + kMalformedHint},
      {"only_a_newline", "\n", R"(down #unknown cluster/node "")" + kMalformedHint},
      {"no_slash", "orders\n", R"(down #unknown cluster/node "orders")" + kMalformedHint},
      {"empty_cluster", "/pg2\n", R"(down #unknown cluster/node "/pg2")" + kMalformedHint},
      {"empty_node", "orders/\n", R"(down #unknown cluster/node "orders/")" + kMalformedHint},
      {"two_slashes", "orders/pg2/x\n",
       R"(down #unknown cluster/node "orders/pg2/x")" + kMalformedHint},
      {"inner_space", "orders/pg 2\n",
       R"(down #unknown cluster/node "orders/pg?2")" + kMalformedHint},
      {"smuggled_second_line_is_not_echoed_raw", "orders/pg2\nup ready 100%\n",
       R"(down #unknown cluster/node "orders/pg2?up?ready?100?")" + kMalformedHint},
      {"binary_bytes", std::string("\x00\xff\"#", 4),
       R"(down #unknown cluster/node "????")" + kMalformedHint},
      {"long_request_is_cut", std::string(300, 'x'),
       R"(down #unknown cluster/node ")" + std::string(64, 'x') + R"(...")" + kMalformedHint},
      {"http_request_by_mistake", "GET / HTTP/1.0\r\n",
       R"(down #unknown cluster/node "GET?/?HTTP/1.0")" + kMalformedHint},
  };
  const ClusterSnapshot snapshot = orders();
  ClusterSnapshot no_cycle = orders();
  no_cycle.cycle = 0;
  for (const Case& c : cases) {
    std::string reply;
    switch (c.view) {
      case Case::kOrders:
        reply = agent_reply(&snapshot, c.request);
        break;
      case Case::kNoCycle:
        reply = agent_reply(&no_cycle, c.request);
        break;
      case Case::kNoSnapshot:
        reply = agent_reply(nullptr, c.request);
        break;
      case Case::kUnknownCluster:
        reply = agent_reply(nullptr, c.request, false);
        break;
    }
    EXPECT_EQ(reply, c.expected) << c.name;
    EXPECT_EQ(reply.find_first_of("\r\n"), std::string::npos) << c.name << ": one line only";
  }
}

// HAProxy's parser ignores words it does not know: "weight:55%" and "down#why" would be
// silently dropped, leaving the server as it was.
TEST(AgentReply, UsesOnlyWordsHaproxyUnderstands) {
  const ClusterSnapshot snapshot = orders();
  for (const char* node : {"pg1", "pg2", "pg3", "pg4", "pg5", "pg6", "pg7", "pg8", "pg9"}) {
    const std::string reply = agent_reply(&snapshot, std::string("orders/") + node + "\n");
    const std::string words = reply.substr(0, reply.find('#'));
    EXPECT_EQ(words.find(':'), std::string::npos) << reply;
    if (reply.find('#') != std::string::npos) {
      EXPECT_EQ(words.back(), ' ') << "a description needs a blank before '#': " << reply;
    }
  }
}

TEST(AgentReply, ParsesClusterAndNode) {
  const auto request = parse_agent_request("orders-eu.1/pg_2\n");
  ASSERT_TRUE(request.has_value());
  EXPECT_EQ(request->cluster, "orders-eu.1");
  EXPECT_EQ(request->node, "pg_2");
  EXPECT_FALSE(parse_agent_request("orders/pg2 extra\n").has_value());
  EXPECT_FALSE(parse_agent_request("orders/pg2\n\n\nx").has_value());
}

// --- the server, over real sockets on 127.0.0.1 -----------------------------------------------

class Client {
 public:
  explicit Client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket() failed");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      ::close(fd_);
      throw std::runtime_error("connect() failed");
    }
  }
  ~Client() { ::close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void send(std::string_view bytes) {
    ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  void close_sending() { ::shutdown(fd_, SHUT_WR); }

  // Everything received until the server closes; throws if it has not closed within `bound`.
  std::string read_until_closed(std::chrono::milliseconds bound) {
    const auto deadline = SteadyClock::now() + bound;
    std::string received;
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
      if (left <= 0ms) throw std::runtime_error("not closed in time; got: " + received);
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[512];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return received;
      received.append(chunk, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
};

struct Running {
  Running() {
    store.expect({"orders"});
    server = std::make_unique<AgentCheckServer>("127.0.0.1:0", store);
    server->start();
  }
  std::string ask(std::string_view request) {
    Client client(server->port());
    client.send(request);
    return client.read_until_closed(3s);
  }
  SnapshotStore store;
  std::unique_ptr<AgentCheckServer> server;
};

TEST(AgentCheckServer, AnswersOneLineFromTheLatestSnapshotAndCloses) {
  Running r;
  EXPECT_EQ(r.ask("orders/pg2\n"), "down #no data yet\n");
  EXPECT_EQ(r.ask("billing/pg2\n"), "down #unknown cluster/node \"billing/pg2\"\n");
  r.store.publish(std::make_shared<ClusterSnapshot>(orders()));
  EXPECT_EQ(r.ask("orders/pg2\n"), "up ready 100%\n");
  EXPECT_EQ(r.ask("orders/pg5\n"), "drain\n");
  auto changed = orders();
  changed.list.replicas = {entry("pg3", 55)};
  r.store.publish(std::make_shared<ClusterSnapshot>(changed));
  EXPECT_EQ(r.ask("orders/pg2\n"), "drain\n") << "answers from the newest snapshot";
}

TEST(AgentCheckServer, AnswersWhatArrivedWhenTheClientStopsSending) {
  Running r;
  r.store.publish(std::make_shared<ClusterSnapshot>(orders()));
  Client client(r.server->port());
  client.send("orders/pg3");
  client.close_sending();
  EXPECT_EQ(client.read_until_closed(3s), "up ready 55%\n");
}

TEST(AgentCheckServer, OverlongRequestIsAnsweredAsMalformed) {
  Running r;
  const std::string reply = r.ask(std::string(1000, 'a'));
  EXPECT_EQ(reply.rfind("down #unknown cluster/node \"" + std::string(64, 'a') + "...\"", 0), 0u)
      << reply;
  EXPECT_EQ(reply.back(), '\n');
}

TEST(AgentCheckServer, SilentClientIsAnsweredAfterTwoSeconds) {
  Running r;
  Client client(r.server->port());
  const auto started = SteadyClock::now();
  const std::string reply = client.read_until_closed(5s);
  const auto waited = SteadyClock::now() - started;
  EXPECT_EQ(reply, "down #unknown cluster/node \"\"" + kMalformedHint + "\n");
  EXPECT_GE(waited, 1900ms);
  EXPECT_LT(waited, 3500ms);
}

TEST(AgentCheckServer, ServesManyConcurrentClientsOnOneThread) {
  Running r;
  r.store.publish(std::make_shared<ClusterSnapshot>(orders()));
  // Silent connections park without blocking the others.
  std::vector<std::unique_ptr<Client>> silent;
  for (int i = 0; i < 50; ++i) silent.push_back(std::make_unique<Client>(r.server->port()));
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 100; ++i) {
    clients.push_back(std::make_unique<Client>(r.server->port()));
    clients.back()->send(i % 2 == 0 ? "orders/pg2\n" : "orders/pg4\n");
  }
  const auto started = SteadyClock::now();
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(clients[static_cast<std::size_t>(i)]->read_until_closed(3s),
              i % 2 == 0 ? "up ready 100%\n" : "up ready 1%\n");
  }
  EXPECT_LT(SteadyClock::now() - started, 1s);
}

TEST(AgentCheckServer, StopClosesOpenConnectionsPromptly) {
  Running r;
  Client silent(r.server->port());
  silent.send("orders/p");  // half a request, waiting for the rest
  // Connections are accepted in order on one thread: once a later one is answered, the silent
  // one is open on the server too.
  EXPECT_EQ(r.ask("orders/pg2\n"), "down #no data yet\n");
  const auto started = SteadyClock::now();
  r.server->stop();
  EXPECT_LT(SteadyClock::now() - started, 1s);
  EXPECT_EQ(silent.read_until_closed(1s), "") << "closed without a reply";
  r.server->stop();  // idempotent
  EXPECT_THROW(Client{r.server->port()}, std::runtime_error) << "no longer listening";
}

TEST(AgentCheckServer, BindErrorsNameTheAddress) {
  SnapshotStore store;
  AgentCheckServer first("127.0.0.1:0", store);
  const std::string taken = "127.0.0.1:" + std::to_string(first.port());
  try {
    AgentCheckServer second(taken, store);
    FAIL() << "bound twice";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("cannot listen on " + taken + ": ", 0), 0u) << e.what();
  }
  try {
    AgentCheckServer bad("127.0.0.1", store);
    FAIL() << "accepted an address without a port";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()),
              "cannot listen on 127.0.0.1: expected host:port, :port or [ipv6-address]:port, e.g. "
              "127.0.0.1:9817");
  }
}

}  // namespace
}  // namespace lagwatch
