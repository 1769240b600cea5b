// HAProxy agent-check responder: the reply decision (pure) and its Asio TCP server.
#include "agent_check.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <exception>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "listen_address.h"
#include "sample.h"

namespace lagwatch {
namespace {

// How much of the client's words we repeat in a reply, and how much of an error message.
constexpr std::size_t kMaxEcho = 64;
constexpr std::size_t kMaxMessage = 120;

bool name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

bool valid_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), name_char);
}

std::string_view trim_blanks(std::string_view text) {
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!text.empty() && blank(text.front())) text.remove_prefix(1);
  while (!text.empty() && blank(text.back())) text.remove_suffix(1);
  return text;
}

// Keeps `allowed` characters, turns every other byte into '?', and cuts at `limit`: what the
// client sent can neither end our line early nor smuggle words into it.
template <typename Allowed>
std::string sanitized(std::string_view text, std::size_t limit, Allowed allowed) {
  std::string out;
  for (const char c : text.substr(0, limit)) out += allowed(c) ? c : '?';
  if (text.size() > limit) out += "...";
  return out;
}

std::string echo(std::string_view request) {
  return sanitized(trim_blanks(request), kMaxEcho, [](char c) { return name_char(c) || c == '/'; });
}

std::string unknown(std::string_view request) {
  return fmt::format("down #unknown cluster/node \"{}\"", echo(request));
}

}  // namespace

std::optional<AgentRequest> parse_agent_request(const std::string& request_line) {
  const std::string_view line = trim_blanks(request_line);
  const std::size_t slash = line.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const std::string_view cluster = line.substr(0, slash);
  const std::string_view node = line.substr(slash + 1);
  if (!valid_name(cluster) || !valid_name(node)) return std::nullopt;
  return AgentRequest{std::string(cluster), std::string(node)};
}

std::string agent_reply(const ClusterSnapshot* snapshot, const std::string& request_line,
                        bool cluster_known) {
  const std::optional<AgentRequest> request = parse_agent_request(request_line);
  if (!request) {
    return unknown(request_line) + " (agent-send must be \"cluster/node\\n\")";
  }
  if (!cluster_known || (snapshot != nullptr && snapshot->name != request->cluster)) {
    return unknown(request_line);
  }
  // Fail closed: until lagwatch has looked, it cannot vouch for anyone.
  if (snapshot == nullptr || snapshot->cycle == 0) return "down #no data yet";

  const auto node = std::find_if(snapshot->nodes.begin(), snapshot->nodes.end(),
                                 [&](const NodeStatus& n) { return n.name == request->node; });
  if (node == snapshot->nodes.end()) return unknown(request_line);

  // Membership and weight come from the list routing.cpp built; nothing is re-decided here.
  const auto& replicas = snapshot->list.replicas;
  const auto entry = std::find_if(replicas.begin(), replicas.end(),
                                  [&](const ReplicaListEntry& e) { return e.node == node->name; });
  if (entry != replicas.end()) return fmt::format("up ready {}%", entry->weight);

  if (!node->up) {
    std::string reply = fmt::format("down #unreachable: {}", error_reason(node->error));
    if (!node->error_message.empty()) {
      reply += ": " + sanitized(node->error_message, kMaxMessage,
                                [](char c) { return c >= ' ' && c <= '~'; });
    }
    return reply;
  }
  // Reachable but not fit (lagging, rising, disconnected) or not a replica at all. "drain"
  // rather than "down": it is alive, and the HTTP check or the next "up ready" settles health.
  return "drain";
}

namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

constexpr std::size_t kMaxRequestBytes = 256;
// HAProxy sends its agent-send string right after connecting; 2 s is far beyond that and
// still shorter than any sane agent-inter, so a silent client cannot pile up.
constexpr std::chrono::seconds kRequestTimeout{2};
// Also bounds writing the reply and waiting for the client to close after it.
constexpr std::chrono::seconds kReplyTimeout{2};
// HAProxy opens one connection per server per agent-inter; more than this at once means
// something else is connecting, and the excess is closed at once to keep file descriptors.
constexpr std::size_t kMaxConnections = 1024;
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};

class Connection;

// Everything runs on the one I/O thread, so no locks beyond the lifecycle one.
struct Core {
  Core(const SnapshotStore& store_in, std::string listen_in)
      : store(store_in), listen(std::move(listen_in)) {}

  void do_accept();
  void on_accept(error_code ec, tcp::socket socket);
  void close_all();

  net::io_context ioc;  // first member: destroyed last
  const SnapshotStore& store;
  const std::string listen;
  tcp::acceptor acceptor{ioc};
  net::steady_timer accept_retry{ioc};
  std::uint16_t port = 0;
  bool logged_at_capacity = false;
  std::unordered_map<Connection*, std::shared_ptr<Connection>> connections;

  std::mutex lifecycle_mutex;  // guards the three fields below
  bool started = false;
  bool stopped = false;
  std::thread thread;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Core& core, tcp::socket socket)
      : core_(core), socket_(std::move(socket)), deadline_(core.ioc) {}

  void start() {
    arm_deadline(kRequestTimeout);
    net::async_read_until(socket_, net::dynamic_buffer(request_, kMaxRequestBytes), '\n',
                          [self = shared_from_this()](error_code ec, std::size_t length) {
                            self->on_read(ec, length);
                          });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    const auto self = shared_from_this();  // the registry entry may be the last reference
    error_code ignored;
    socket_.close(ignored);
    deadline_.cancel();
    core_.connections.erase(this);
  }

 private:
  void arm_deadline(std::chrono::seconds timeout) {
    deadline_.expires_after(timeout);
    deadline_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec || self->closed_) return;
      self->timed_out_ = true;
      error_code ignored;
      self->socket_.cancel(ignored);
    });
  }

  void on_read(error_code ec, std::size_t length) {
    if (closed_) return;
    // A whole line; or what arrived before the client stopped sending, filled 256 bytes
    // (not_found) or ran out of time: answered all the same, since a reply naming the bad
    // request is more use to an operator than a silent close.
    if (!ec) {
      request_.resize(length);
    } else if (ec != net::error::eof && ec != net::error::not_found &&
               !(ec == net::error::operation_aborted && timed_out_)) {
      return close();
    }
    reply_ = answer(request_) + "\n";
    timed_out_ = false;
    arm_deadline(kReplyTimeout);
    net::async_write(socket_, net::buffer(reply_),
                     [self = shared_from_this()](error_code write_ec, std::size_t) {
                       self->on_write(write_ec);
                     });
  }

  std::string answer(const std::string& line) const {
    const std::optional<AgentRequest> request = parse_agent_request(line);
    if (!request) return agent_reply(nullptr, line);
    const auto snapshot = core_.store.get(request->cluster);
    return agent_reply(snapshot.get(), line, core_.store.known(request->cluster));
  }

  void on_write(error_code ec) {
    if (closed_ || ec) return close();
    // Closing with unread input makes the kernel send RST, which can destroy the reply before
    // the client read it: stop sending, then read and discard until the client closes.
    error_code shutdown_ec;
    socket_.shutdown(tcp::socket::shutdown_send, shutdown_ec);
    if (shutdown_ec) return close();
    drain();
  }

  void drain() {
    socket_.async_read_some(net::buffer(discard_),
                            [self = shared_from_this()](error_code ec, std::size_t) {
                              if (self->closed_) return;
                              if (ec) return self->close();  // EOF, reset, or the deadline
                              self->drain();
                            });
  }

  Core& core_;
  tcp::socket socket_;
  net::steady_timer deadline_;
  std::string request_;
  std::string reply_;
  std::array<char, 256> discard_{};
  bool timed_out_ = false;
  bool closed_ = false;
};

void Core::do_accept() {
  acceptor.async_accept(
      [this](error_code ec, tcp::socket socket) { on_accept(ec, std::move(socket)); });
}

void Core::on_accept(error_code ec, tcp::socket socket) {
  if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
  if (ec) {
    spdlog::warn("agent-check: accepting a connection on {} failed: {}", listen, ec.message());
    accept_retry.expires_after(kAcceptRetryDelay);
    accept_retry.async_wait([this](error_code wait_ec) {
      if (!wait_ec && acceptor.is_open()) do_accept();
    });
    return;
  }
  if (connections.size() < kMaxConnections) {
    logged_at_capacity = false;
    auto connection = std::make_shared<Connection>(*this, std::move(socket));
    connections.emplace(connection.get(), connection);
    connection->start();
  } else {
    if (!logged_at_capacity) {
      logged_at_capacity = true;
      spdlog::warn("agent-check: {} connections open on {}, closing new ones until some finish",
                   connections.size(), listen);
    }
    error_code ignored;
    socket.close(ignored);
  }
  do_accept();
}

void Core::close_all() {
  error_code ignored;
  acceptor.close(ignored);
  accept_retry.cancel();
  std::vector<std::shared_ptr<Connection>> open;
  for (const auto& entry : connections) open.push_back(entry.second);
  for (const auto& connection : open) connection->close();
}

}  // namespace

struct AgentCheckServer::Impl {
  std::unique_ptr<Core> core;
};

AgentCheckServer::AgentCheckServer(const std::string& listen, const SnapshotStore& store)
    : impl_(std::make_unique<Impl>()) {
  impl_->core = std::make_unique<Core>(store, listen);
  impl_->core->port = listen_on(impl_->core->acceptor, listen);
}

AgentCheckServer::~AgentCheckServer() { stop(); }

void AgentCheckServer::start() {
  Core& core = *impl_->core;
  const std::lock_guard lock(core.lifecycle_mutex);
  if (core.started || core.stopped) return;
  core.started = true;
  core.do_accept();  // the thread does not run yet: nothing to race with
  core.thread = std::thread([&core] {
    for (;;) {
      try {
        core.ioc.run();
        return;
      } catch (const std::exception& e) {
        spdlog::error("agent-check: I/O thread caught an exception, continuing: {}", e.what());
      }
    }
  });
}

void AgentCheckServer::stop() {
  Core& core = *impl_->core;
  const std::lock_guard lock(core.lifecycle_mutex);
  if (core.stopped) return;
  core.stopped = true;
  if (core.started) {
    // Once the acceptor and every socket are closed, run() runs out of work and returns.
    net::post(core.ioc, [&core] { core.close_all(); });
    core.thread.join();
  } else {
    core.close_all();
  }
}

std::uint16_t AgentCheckServer::port() const { return impl_->core->port; }

}  // namespace lagwatch
