// Tests for HttpServer: real sockets on 127.0.0.1, libcurl or raw TCP as the client.
#include "http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <curl/curl.h>
#include <gtest/gtest.h>

namespace lagwatch {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Upper bound for anything that should happen "promptly"; only reached when a test fails.
constexpr auto kGenerous = 20s;

class CurlGlobal : public ::testing::Environment {
 public:
  void SetUp() override { curl_global_init(CURL_GLOBAL_DEFAULT); }
  void TearDown() override { curl_global_cleanup(); }
};
[[maybe_unused]] ::testing::Environment* const kCurlGlobal =
    ::testing::AddGlobalTestEnvironment(new CurlGlobal);

HttpServerOptions local_options() {
  HttpServerOptions options;
  options.listen = "127.0.0.1:0";
  options.threads = 2;
  return options;
}

std::string url(const HttpServer& server, std::string_view path_and_query) {
  return "http://127.0.0.1:" + std::to_string(server.port()) + std::string(path_and_query);
}

HttpResponse text(std::string body, int status = 200) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

// --- libcurl client ---------------------------------------------------------------------

struct Fetched {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased
};

std::size_t append_body(char* data, std::size_t size, std::size_t count, void* out) {
  static_cast<Fetched*>(out)->body.append(data, size * count);
  return size * count;
}

std::size_t collect_header(char* data, std::size_t size, std::size_t count, void* out) {
  const std::string_view line(data, size * count);
  const std::size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.remove_suffix(1);
    static_cast<Fetched*>(out)->headers[name] = std::string(value);
  }
  return size * count;
}

struct EasyDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
using Easy = std::unique_ptr<CURL, EasyDeleter>;

struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

Easy new_easy() {
  Easy easy(curl_easy_init());
  if (!easy) throw std::runtime_error("curl_easy_init failed");
  curl_easy_setopt(easy.get(), CURLOPT_TIMEOUT_MS, 60'000L);
  curl_easy_setopt(easy.get(), CURLOPT_NOSIGNAL, 1L);
  return easy;
}

// Points `easy` at `target` and makes its answer land in `out`.
void prepare(CURL* easy, const std::string& target, Fetched& out) {
  out = Fetched{};
  curl_easy_setopt(easy, CURLOPT_URL, target.c_str());
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &out);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, collect_header);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &out);
}

Fetched perform(CURL* easy, const std::string& target) {
  Fetched out;
  prepare(easy, target, out);
  out.code = curl_easy_perform(easy);
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &out.status);
  return out;
}

Fetched fetch(const std::string& target) { return perform(new_easy().get(), target); }

// --- raw TCP client, for what curl will not send or hides -------------------------------

class RawClient {
 public:
  explicit RawClient(std::uint16_t port) {
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
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Reads whatever arrives until the server closes the connection (true) or `bound` passes
  // (false). A reset counts as closed.
  bool read_until_closed(std::chrono::milliseconds bound) {
    const auto deadline = Clock::now() + bound;
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left <= 0ms) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return true;
      received_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  // Reads until one whole response (head plus Content-Length bytes) is buffered, and returns
  // it; empty if it did not arrive within `bound`.
  std::string read_response(std::chrono::milliseconds bound) {
    const auto deadline = Clock::now() + bound;
    for (;;) {
      const std::size_t head_end = received_.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        std::size_t length = 0;
        const std::size_t at = received_.find("Content-Length: ");
        if (at != std::string::npos && at < head_end) {
          length = std::stoul(received_.substr(at + 16));
        }
        const std::size_t total = head_end + 4 + length;
        if (received_.size() >= total) {
          std::string response = received_.substr(0, total);
          received_.erase(0, total);
          return response;
        }
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left <= 0ms) return {};
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return {};
      received_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  const std::string& received() const { return received_; }

 private:
  int fd_ = -1;
  std::string received_;
};

// Collects responders that handlers park, for tests that answer later.
class ParkedResponders {
 public:
  void park(const HttpRequest& request, Responder responder) {
    const std::lock_guard lock(mutex_);
    requests_.push_back(request);
    responders_.push_back(std::move(responder));
    changed_.notify_all();
  }
  // Waits until at least `count` are parked; false after kGenerous.
  bool wait_for(std::size_t count) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kGenerous, [&] { return responders_.size() >= count; });
  }
  std::vector<Responder> take() {
    const std::lock_guard lock(mutex_);
    return std::exchange(responders_, {});
  }
  std::vector<HttpRequest> requests() {
    const std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<HttpRequest> requests_;
  std::vector<Responder> responders_;
};

// --- requests and responses --------------------------------------------------------------

TEST(HttpServer, get_sees_decoded_path_query_and_lowercased_headers) {
  std::mutex mutex;
  std::vector<HttpRequest> seen;
  HttpServer server(local_options(), [&](const HttpRequest& request, Responder respond) {
    {
      const std::lock_guard lock(mutex);
      seen.push_back(request);
    }
    HttpResponse response = text("hello\n");
    response.content_type = "application/json";
    response.headers.emplace_back("X-Lagwatch-Index", "42");
    respond(std::move(response));
  });
  server.start();

  const Easy easy = new_easy();
  Slist headers(curl_slist_append(nullptr, "X-Custom-Header: Yes"));
  curl_easy_setopt(easy.get(), CURLOPT_HTTPHEADER, headers.get());
  const std::string target =
      "/api/v1/clusters/or%20ders/replicas?max_lag=1.5s&min_position=0%2F3000060&x=a+b"
      "&plus=%2B&flag&&x=last";
  Fetched got = perform(easy.get(), url(server, target));

  ASSERT_EQ(got.code, CURLE_OK) << curl_easy_strerror(got.code);
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body, "hello\n");
  EXPECT_EQ(got.headers["server"], "lagwatch");
  EXPECT_EQ(got.headers["content-type"], "application/json");
  EXPECT_EQ(got.headers["content-length"], "6");
  EXPECT_EQ(got.headers["x-lagwatch-index"], "42");

  const std::lock_guard lock(mutex);
  ASSERT_EQ(seen.size(), 1u);
  const HttpRequest& request = seen[0];
  EXPECT_EQ(request.method, "GET");
  EXPECT_EQ(request.target, target);
  EXPECT_EQ(request.path, "/api/v1/clusters/or ders/replicas");
  const std::map<std::string, std::string> expected_query{{"max_lag", "1.5s"},
                                                          {"min_position", "0/3000060"},
                                                          {"x", "last"},
                                                          {"plus", "+"},
                                                          {"flag", ""}};
  EXPECT_EQ(request.query, expected_query);
  EXPECT_EQ(request.headers.count("x-custom-header"), 1u);
  EXPECT_EQ(request.headers.at("x-custom-header"), "Yes");
  EXPECT_EQ(request.headers.at("host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_TRUE(request.body.empty());
}

TEST(HttpServer, query_plus_is_a_space) {
  std::promise<HttpRequest> seen;
  HttpServer server(local_options(), [&](const HttpRequest& request, Responder respond) {
    seen.set_value(request);
    respond(text("ok"));
  });
  server.start();
  ASSERT_EQ(fetch(url(server, "/?x=a+b&y=c%20d")).status, 200);
  const HttpRequest request = seen.get_future().get();
  EXPECT_EQ(request.query.at("x"), "a b");
  EXPECT_EQ(request.query.at("y"), "c d");
}

TEST(HttpServer, post_body_reaches_handler) {
  HttpServer server(local_options(), [](const HttpRequest& request, Responder respond) {
    respond(text(request.method + " " + request.path + " " + request.body));
  });
  server.start();

  const Easy easy = new_easy();
  curl_easy_setopt(easy.get(), CURLOPT_POSTFIELDS, "reload=now&why=config+changed");
  const Fetched got = perform(easy.get(), url(server, "/-/reload"));
  ASSERT_EQ(got.code, CURLE_OK) << curl_easy_strerror(got.code);
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body, "POST /-/reload reload=now&why=config+changed");
}

TEST(HttpServer, keep_alive_reuses_one_connection_for_two_requests) {
  std::atomic<int> handled{0};
  HttpServer server(local_options(), [&](const HttpRequest& request, Responder respond) {
    ++handled;
    respond(text(request.path));
  });
  server.start();

  const Easy easy = new_easy();
  long connects = -1;
  const Fetched first = perform(easy.get(), url(server, "/one"));
  curl_easy_getinfo(easy.get(), CURLINFO_NUM_CONNECTS, &connects);
  EXPECT_EQ(first.body, "/one");
  EXPECT_EQ(connects, 1);

  const Fetched second = perform(easy.get(), url(server, "/two"));
  curl_easy_getinfo(easy.get(), CURLINFO_NUM_CONNECTS, &connects);
  EXPECT_EQ(second.body, "/two");
  EXPECT_EQ(connects, 0) << "the second request opened a new connection";
  EXPECT_EQ(handled.load(), 2);
}

TEST(HttpServer, http_1_0_request_without_keep_alive_is_answered_then_closed) {
  HttpServer server(local_options(),
                    [](const HttpRequest&, Responder respond) { respond(text("old")); });
  server.start();

  RawClient client(server.port());
  ASSERT_TRUE(client.send("GET /x HTTP/1.0\r\n\r\n"));
  ASSERT_TRUE(client.read_until_closed(kGenerous)) << "got: " << client.received();
  EXPECT_EQ(client.received().rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << client.received();
  EXPECT_NE(client.received().find("Content-Length: 3\r\n"), std::string::npos);
  EXPECT_EQ(client.received().substr(client.received().size() - 3), "old");
}

TEST(HttpServer, http_1_0_keep_alive_is_honoured) {
  HttpServer server(local_options(), [](const HttpRequest& request, Responder respond) {
    respond(text(request.path));
  });
  server.start();

  RawClient client(server.port());
  ASSERT_TRUE(client.send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  const std::string first = client.read_response(kGenerous);
  EXPECT_NE(first.find("Connection: keep-alive\r\n"), std::string::npos) << first;
  ASSERT_TRUE(client.send("GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  const std::string second = client.read_response(kGenerous);
  EXPECT_EQ(second.substr(second.size() - 2), "/b") << second;
}

TEST(HttpServer, head_request_gets_headers_without_body) {
  HttpServer server(local_options(),
                    [](const HttpRequest&, Responder respond) { respond(text("hello")); });
  server.start();

  RawClient client(server.port());
  ASSERT_TRUE(client.send("HEAD /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
  ASSERT_TRUE(client.read_until_closed(kGenerous));
  const std::string& got = client.received();
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
  EXPECT_NE(got.find("Content-Length: 5\r\n"), std::string::npos) << got;
  EXPECT_EQ(got.find("\r\n\r\n") + 4, got.size()) << "HEAD response carried a body: " << got;
}

TEST(HttpServer, shared_pieces_follow_the_body_in_order_and_head_sends_none) {
  // Pieces big enough that the socket takes them in several writes, and more of them than
  // the body hands Beast at a time.
  const auto big = std::make_shared<const std::string>(300 * 1024, 'b');
  std::vector<std::shared_ptr<const std::string>> pieces = {
      big, std::make_shared<const std::string>(), nullptr,
      std::make_shared<const std::string>("c")};
  for (int i = 0; i < 200; ++i)
    pieces.push_back(std::make_shared<const std::string>(std::to_string(i)));
  pieces.push_back(big);
  HttpServer server(local_options(), [&](const HttpRequest&, Responder respond) {
    HttpResponse response = text("a");
    response.shared_body = pieces;
    respond(std::move(response));
  });
  server.start();
  std::string expected = "a";
  for (const auto& p : pieces)
    if (p) expected += *p;

  Fetched got = fetch(url(server, "/x"));
  EXPECT_EQ(got.status, 200);
  EXPECT_TRUE(got.body == expected) << "got " << got.body.size() << " bytes";

  RawClient client(server.port());
  ASSERT_TRUE(client.send("HEAD /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
  ASSERT_TRUE(client.read_until_closed(kGenerous));
  const std::string& head = client.received();
  EXPECT_NE(head.find("Content-Length: " + std::to_string(expected.size()) + "\r\n"),
            std::string::npos)
      << head;
  EXPECT_EQ(head.find("\r\n\r\n") + 4, head.size()) << "HEAD response carried a body";
}

TEST(HttpServer, pipelined_requests_are_answered_in_order_one_at_a_time) {
  ParkedResponders parked;
  std::atomic<int> handled{0};
  HttpServer server(local_options(), [&](const HttpRequest& request, Responder respond) {
    ++handled;
    if (request.path == "/first") {
      parked.park(request, std::move(respond));
    } else {
      respond(text("second"));
    }
  });
  server.start();

  RawClient client(server.port());
  ASSERT_TRUE(
      client.send("GET /first HTTP/1.1\r\nHost: t\r\n\r\nGET /second HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(parked.wait_for(1));
  EXPECT_EQ(handled.load(), 1) << "the second request was handled before the first was answered";
  parked.take()[0](text("first"));

  const std::string first = client.read_response(kGenerous);
  const std::string second = client.read_response(kGenerous);
  EXPECT_EQ(first.substr(first.size() - 5), "first") << first;
  EXPECT_EQ(second.substr(second.size() - 6), "second") << second;
}

// --- deferred answers and long polls -----------------------------------------------------

TEST(HttpServer, deferred_responder_answers_from_another_thread) {
  std::promise<Responder> parked;
  HttpServer server(local_options(), [&](const HttpRequest&, Responder respond) {
    parked.set_value(std::move(respond));
  });
  server.start();

  const auto started = Clock::now();
  auto client = std::async(std::launch::async, [&] { return fetch(url(server, "/poll")); });
  auto responder_future = parked.get_future();
  ASSERT_EQ(responder_future.wait_for(kGenerous), std::future_status::ready);
  std::thread answerer([respond = responder_future.get()] {
    std::this_thread::sleep_for(200ms);  // the deferral under test, not a synchronisation
    respond(text("late"));
  });
  ASSERT_EQ(client.wait_for(kGenerous), std::future_status::ready);
  answerer.join();
  const Fetched got = client.get();
  EXPECT_EQ(got.code, CURLE_OK) << curl_easy_strerror(got.code);
  EXPECT_EQ(got.body, "late");
  EXPECT_GE(Clock::now() - started, 200ms);
}

TEST(HttpServer, pending_long_polls_do_not_hold_up_other_requests) {
  constexpr int kPolls = 200;
  ParkedResponders parked;
  HttpServer server(local_options(), [&](const HttpRequest& request, Responder respond) {
    if (request.path == "/poll") {
      parked.park(request, std::move(respond));
    } else {
      respond(text("prompt"));
    }
  });
  server.start();

  // All long polls on one curl multi handle, driven by one thread.
  std::vector<Fetched> results(kPolls);
  auto polls = std::async(std::launch::async, [&] {
    CURLM* multi = curl_multi_init();
    std::vector<Easy> easies;
    for (int i = 0; i < kPolls; ++i) {
      easies.push_back(new_easy());
      prepare(easies.back().get(), url(server, "/poll?id=" + std::to_string(i)), results[i]);
      curl_multi_add_handle(multi, easies.back().get());
    }
    int running = 1;
    while (running > 0) {
      curl_multi_perform(multi, &running);
      if (running > 0) curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
    }
    while (CURLMsg* message = [&] {
      int left = 0;
      return curl_multi_info_read(multi, &left);
    }()) {
      if (message->msg != CURLMSG_DONE) continue;
      for (int i = 0; i < kPolls; ++i) {
        if (easies[i].get() != message->easy_handle) continue;
        results[i].code = message->data.result;
        curl_easy_getinfo(easies[i].get(), CURLINFO_RESPONSE_CODE, &results[i].status);
      }
    }
    for (auto& easy : easies) curl_multi_remove_handle(multi, easy.get());
    curl_multi_cleanup(multi);
  });

  ASSERT_TRUE(parked.wait_for(kPolls)) << "only " << parked.requests().size() << " arrived";

  const auto before = Clock::now();
  const Fetched other = fetch(url(server, "/metrics"));
  EXPECT_EQ(other.code, CURLE_OK) << curl_easy_strerror(other.code);
  EXPECT_EQ(other.body, "prompt");
  EXPECT_LT(Clock::now() - before, 5s);

  const std::vector<HttpRequest> requests = parked.requests();
  std::vector<Responder> responders = parked.take();
  ASSERT_EQ(responders.size(), static_cast<std::size_t>(kPolls));
  for (int i = 0; i < kPolls; ++i) responders[i](text("answer " + requests[i].query.at("id")));

  ASSERT_EQ(polls.wait_for(kGenerous), std::future_status::ready);
  polls.get();
  for (int i = 0; i < kPolls; ++i) {
    EXPECT_EQ(results[i].code, CURLE_OK)
        << "poll " << i << ": " << curl_easy_strerror(results[i].code);
    EXPECT_EQ(results[i].status, 200) << "poll " << i;
    EXPECT_EQ(results[i].body, "answer " + std::to_string(i));
  }
}

TEST(HttpServer, pending_long_poll_outlives_idle_timeout) {
  HttpServerOptions options = local_options();
  options.idle_timeout = 1s;
  ParkedResponders parked;
  HttpServer server(options, [&](const HttpRequest& request, Responder respond) {
    parked.park(request, std::move(respond));
  });
  server.start();

  auto poll = std::async(std::launch::async, [&] { return fetch(url(server, "/poll")); });
  ASSERT_TRUE(parked.wait_for(1));
  // A connection opened after the poll's request was read and then left silent is closed by
  // the idle timeout; once it is, the poll's own idle deadline has certainly passed too.
  RawClient idle(server.port());
  ASSERT_TRUE(idle.read_until_closed(kGenerous)) << "idle connection was never closed";

  parked.take()[0](text("still here"));
  ASSERT_EQ(poll.wait_for(kGenerous), std::future_status::ready);
  const Fetched got = poll.get();
  EXPECT_EQ(got.code, CURLE_OK) << curl_easy_strerror(got.code);
  EXPECT_EQ(got.body, "still here");
}

TEST(HttpServer, second_call_to_a_responder_is_ignored) {
  HttpServer server(local_options(), [](const HttpRequest& request, Responder respond) {
    respond(text("first " + request.path));
    respond(text("second " + request.path));
  });
  server.start();

  const Easy easy = new_easy();
  EXPECT_EQ(perform(easy.get(), url(server, "/a")).body, "first /a");
  // Had the second call written anything, this response would be out of step.
  EXPECT_EQ(perform(easy.get(), url(server, "/b")).body, "first /b");
}

TEST(HttpServer, responder_called_after_server_destroyed_does_nothing) {
  std::promise<Responder> parked;
  auto server = std::make_unique<HttpServer>(
      local_options(),
      [&](const HttpRequest&, Responder respond) { parked.set_value(std::move(respond)); });
  server->start();
  const std::string target = url(*server, "/poll");

  auto client = std::async(std::launch::async, [&] { return fetch(target); });
  auto responder_future = parked.get_future();
  ASSERT_EQ(responder_future.wait_for(kGenerous), std::future_status::ready);
  const Responder respond = responder_future.get();

  server.reset();
  ASSERT_EQ(client.wait_for(kGenerous), std::future_status::ready);
  EXPECT_NE(client.get().code, CURLE_OK) << "the stopped server still answered";

  respond(text("too late"));
  Responder copy = respond;
  std::thread([copy] { copy(text("too late, other thread")); }).join();
}

TEST(HttpServer, responders_racing_server_shutdown_are_harmless) {
  constexpr std::size_t kPolls = 20;
  ParkedResponders parked;
  auto server = std::make_unique<HttpServer>(
      local_options(),
      [&](const HttpRequest& request, Responder respond) { parked.park(request, respond); });
  server->start();

  std::vector<std::unique_ptr<RawClient>> clients;
  for (std::size_t i = 0; i < kPolls; ++i) {
    clients.push_back(std::make_unique<RawClient>(server->port()));
    ASSERT_TRUE(clients.back()->send("GET /poll HTTP/1.1\r\nHost: t\r\n\r\n"));
  }
  ASSERT_TRUE(parked.wait_for(kPolls));
  std::vector<Responder> responders = parked.take();

  std::promise<void> go;
  std::shared_future<void> start = go.get_future().share();
  std::thread answerer([&] {
    start.wait();
    for (auto& respond : responders) respond(text("racing"));
  });
  go.set_value();
  server.reset();
  answerer.join();
  for (auto& client : clients) EXPECT_TRUE(client->read_until_closed(kGenerous));
}

TEST(HttpServer, client_leaving_a_long_poll_frees_its_connection) {
  HttpServerOptions options = local_options();
  options.max_connections = 1;
  ParkedResponders parked;
  HttpServer server(options, [&](const HttpRequest& request, Responder respond) {
    if (request.path == "/poll") {
      parked.park(request, std::move(respond));
    } else {
      respond(text("served"));
    }
  });
  server.start();

  {
    RawClient leaver(server.port());
    ASSERT_TRUE(leaver.send("GET /poll HTTP/1.1\r\nHost: t\r\n\r\n"));
    ASSERT_TRUE(parked.wait_for(1));
  }  // closes its socket while the poll is pending

  // The only slot frees once the server notices the hang-up; until then new connections are
  // closed at once. Retry until one is served.
  const auto deadline = Clock::now() + kGenerous;
  std::string got;
  while (got.empty() && Clock::now() < deadline) {
    RawClient next(server.port());
    if (!next.send("GET /other HTTP/1.1\r\nHost: t\r\n\r\n")) continue;
    got = next.read_response(kGenerous);
  }
  EXPECT_NE(got.find("served"), std::string::npos) << "the left poll still holds its connection";
  parked.take()[0](text("nobody listens"));  // harmless
}

// --- limits and errors -------------------------------------------------------------------

TEST(HttpServer, oversized_header_gets_431) {
  HttpServerOptions options = local_options();
  options.max_header_bytes = 1024;
  std::atomic<int> handled{0};
  HttpServer server(options, [&](const HttpRequest&, Responder respond) {
    ++handled;
    respond(text("should not happen"));
  });
  server.start();

  const Easy easy = new_easy();
  const std::string big = "X-Big: " + std::string(4096, 'a');
  Slist headers(curl_slist_append(nullptr, big.c_str()));
  curl_easy_setopt(easy.get(), CURLOPT_HTTPHEADER, headers.get());
  Fetched got = perform(easy.get(), url(server, "/"));
  EXPECT_EQ(got.code, CURLE_OK) << curl_easy_strerror(got.code);
  EXPECT_EQ(got.status, 431);
  EXPECT_EQ(got.headers["connection"], "close");
  EXPECT_EQ(handled.load(), 0);
}

TEST(HttpServer, oversized_body_gets_413) {
  HttpServerOptions options = local_options();
  options.max_body_bytes = 1024;
  HttpServer server(options, [](const HttpRequest&, Responder respond) { respond(text("no")); });
  server.start();

  const Easy easy = new_easy();
  const std::string body(4096, 'b');
  Slist headers(curl_slist_append(nullptr, "Expect:"));  // send the body without waiting
  curl_easy_setopt(easy.get(), CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(easy.get(), CURLOPT_POSTFIELDS, body.c_str());
  const Fetched got = perform(easy.get(), url(server, "/-/reload"));
  EXPECT_EQ(got.code, CURLE_OK) << curl_easy_strerror(got.code);
  EXPECT_EQ(got.status, 413);
}

TEST(HttpServer, malformed_request_line_gets_400_and_close) {
  std::atomic<int> handled{0};
  HttpServer server(local_options(), [&](const HttpRequest&, Responder respond) {
    ++handled;
    respond(text("no"));
  });
  server.start();

  RawClient client(server.port());
  ASSERT_TRUE(client.send("THIS IS NOT HTTP\r\n\r\n"));
  ASSERT_TRUE(client.read_until_closed(kGenerous));
  EXPECT_EQ(client.received().rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << client.received();
  EXPECT_EQ(handled.load(), 0);
}

TEST(HttpServer, handler_exception_becomes_generic_500) {
  HttpServer server(local_options(), [](const HttpRequest& request, Responder respond) {
    if (request.path == "/boom") throw std::runtime_error("internal detail: snapshot missing");
    respond(text("fine"));
  });
  server.start();

  const Easy easy = new_easy();
  const Fetched got = perform(easy.get(), url(server, "/boom"));
  EXPECT_EQ(got.status, 500);
  EXPECT_EQ(got.body.find("internal detail"), std::string::npos) << got.body;
  EXPECT_EQ(perform(easy.get(), url(server, "/after")).body, "fine");
}

TEST(HttpServer, trickling_request_is_cut_off_at_idle_timeout) {
  HttpServerOptions options = local_options();
  options.idle_timeout = 1s;
  std::atomic<int> handled{0};
  HttpServer server(options, [&](const HttpRequest&, Responder respond) {
    ++handled;
    respond(text("no"));
  });
  server.start();

  // A byte every 100 ms: never silent for a second, yet the request never completes.
  RawClient client(server.port());
  const auto started = Clock::now();
  bool closed = false;
  ASSERT_TRUE(client.send("GET / HTTP/1.1\r\nX-Slow: "));
  while (!closed && Clock::now() - started < kGenerous) {
    closed = !client.send("a") || client.read_until_closed(100ms);
  }
  EXPECT_TRUE(closed);
  EXPECT_LT(Clock::now() - started, 10s);
  EXPECT_EQ(handled.load(), 0);
}

TEST(HttpServer, connections_beyond_the_cap_are_closed_at_once) {
  HttpServerOptions options = local_options();
  options.max_connections = 2;
  HttpServer server(
      options, [](const HttpRequest& request, Responder respond) { respond(text(request.path)); });
  server.start();

  RawClient first(server.port());
  RawClient second(server.port());
  // Answers prove both were accepted before the third connects.
  ASSERT_TRUE(first.send("GET /1 HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_FALSE(first.read_response(kGenerous).empty());
  ASSERT_TRUE(second.send("GET /2 HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_FALSE(second.read_response(kGenerous).empty());

  RawClient third(server.port());
  EXPECT_TRUE(third.read_until_closed(kGenerous));
  EXPECT_TRUE(third.received().empty()) << third.received();

  ASSERT_TRUE(first.send("GET /again HTTP/1.1\r\nHost: t\r\n\r\n"));
  const std::string again = first.read_response(kGenerous);
  EXPECT_EQ(again.substr(again.size() - 6), "/again") << again;
}

// --- listening and stopping --------------------------------------------------------------

TEST(HttpServer, busy_port_is_reported_with_the_address) {
  HttpServer first(local_options(), [](const HttpRequest&, Responder) {});
  HttpServerOptions options = local_options();
  options.listen = "127.0.0.1:" + std::to_string(first.port());
  try {
    HttpServer second(options, [](const HttpRequest&, Responder) {});
    FAIL() << "bound a port that is in use";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "cannot listen on 127.0.0.1:" + std::to_string(first.port()) +
                                         ": Address already in use");
  }
}

TEST(HttpServer, listen_accepts_port_only_and_bracketed_ipv6) {
  const auto answer = [](const HttpRequest&, Responder respond) { respond(text("up")); };
  HttpServerOptions any = local_options();
  any.listen = ":0";
  HttpServer all_interfaces(any, answer);
  all_interfaces.start();
  EXPECT_NE(all_interfaces.port(), 0);
  EXPECT_EQ(fetch(url(all_interfaces, "/")).body, "up");

  HttpServerOptions v6 = local_options();
  v6.listen = "[::1]:0";
  std::unique_ptr<HttpServer> loopback6;
  try {
    loopback6 = std::make_unique<HttpServer>(v6, answer);
  } catch (const std::runtime_error& e) {
    GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
  }
  loopback6->start();
  const Fetched got = fetch("http://[::1]:" + std::to_string(loopback6->port()) + "/");
  EXPECT_EQ(got.body, "up") << curl_easy_strerror(got.code);
}

TEST(HttpServer, listen_rejects_malformed_addresses_with_a_hint) {
  for (const std::string listen :
       {"9817", "127.0.0.1:", "127.0.0.1:99999", "::1:9817", "127.0.0.1:12ab"}) {
    HttpServerOptions options = local_options();
    options.listen = listen;
    try {
      HttpServer server(options, [](const HttpRequest&, Responder) {});
      ADD_FAILURE() << "accepted \"" << listen << "\"";
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("cannot listen on " + listen + ": ", 0), 0u)
          << e.what();
    }
  }
}

TEST(HttpServer, stop_closes_open_connections_and_is_idempotent) {
  HttpServer server(local_options(),
                    [](const HttpRequest&, Responder respond) { respond(text("x")); });
  server.start();
  RawClient client(server.port());
  ASSERT_TRUE(client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_FALSE(client.read_response(kGenerous).empty());

  server.stop();
  EXPECT_TRUE(client.read_until_closed(kGenerous));
  server.stop();
  server.start();  // after stop: does nothing
}

TEST(HttpServer, server_never_started_stops_cleanly) {
  HttpServer server(local_options(), [](const HttpRequest&, Responder) {});
  EXPECT_NE(server.port(), 0);
}

}  // namespace
}  // namespace lagwatch
