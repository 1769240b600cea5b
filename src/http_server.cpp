// HttpServer: Beast sessions (plain or TLS) on one io_context; Responders that may answer later
// from any thread; basic auth in front of the handler.
#include "http_server.h"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <limits>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>

#include <curl/curl.h>
#include <fmt/format.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "listen_address.h"

namespace lagwatch {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

// After a response that closes the connection we stop sending but keep reading (and
// discarding) this long: closing a socket with unread input makes the kernel send RST, which
// can destroy the response before the client read it (e.g. a 431 sent mid-header).
constexpr std::chrono::seconds kLingerTimeout{2};
constexpr std::size_t kLingerChunk = 4096;
// Pause before accepting again after accept() failed, e.g. out of file descriptors: the
// pending connection stays in the backlog, so retrying at once would spin.
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};
// A TLS client has this long from connecting to finishing its handshake: shorter than the
// idle timeout, since a half-done handshake is never a legitimate long wait.
constexpr std::chrono::seconds kHandshakeTimeout{10};

// A Beast body of shared, immutable strings, written in order as gather lists: a response's
// pieces go out without being joined into one buffer first. The writer hands the serializer
// at most kPiecesPerBatch of them at a time (as many as one writev() takes from Asio):
// given all 3,000 pieces of a 1,000-node /metrics at once, Beast walked the whole remaining
// list on every write to the socket.
struct SharedPiecesBody {
  using value_type = std::vector<std::shared_ptr<const std::string>>;
  static constexpr std::size_t kPiecesPerBatch = 64;

  static std::uint64_t size(const value_type& pieces) {
    std::uint64_t n = 0;
    for (const auto& p : pieces) n += p->size();
    return n;
  }

  class writer {
   public:
    using const_buffers_type = std::vector<net::const_buffer>;

    template <bool isRequest, class Fields>
    writer(const http::header<isRequest, Fields>&, const value_type& pieces) : pieces_(pieces) {}

    void init(beast::error_code& ec) { ec = {}; }

    boost::optional<std::pair<const_buffers_type, bool>> get(beast::error_code& ec) {
      ec = {};
      const_buffers_type buffers;
      while (next_ < pieces_.size() && buffers.size() < kPiecesPerBatch) {
        const auto& p = pieces_[next_++];
        if (!p->empty()) buffers.emplace_back(p->data(), p->size());
      }
      if (buffers.empty()) return boost::none;
      return std::make_pair(std::move(buffers), next_ < pieces_.size());
    }

   private:
    const value_type& pieces_;
    std::size_t next_ = 0;
  };
};

// Percent-decoding is libcurl's (one way to do a thing); the handle argument is ignored
// since curl 7.82.
std::string percent_decode(std::string_view text) {
  // Also keeps an empty string away from curl, which would strlen() it.
  if (text.find('%') == std::string_view::npos) return std::string(text);
  if (text.size() > static_cast<std::size_t>(INT_MAX)) return std::string(text);
  int decoded_length = 0;
  char* decoded =
      curl_easy_unescape(nullptr, text.data(), static_cast<int>(text.size()), &decoded_length);
  if (decoded == nullptr) throw std::bad_alloc();
  std::string result(decoded, static_cast<std::size_t>(decoded_length));
  curl_free(decoded);
  return result;
}

// application/x-www-form-urlencoded query: pairs split on '&' and '=', '+' is a space.
std::map<std::string, std::string> parse_query(std::string_view query) {
  std::map<std::string, std::string> result;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    std::string pair(query.substr(0, amp));
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    // Before decoding, so that an encoded "%2B" stays a '+'.
    std::replace(pair.begin(), pair.end(), '+', ' ');
    const std::size_t eq = pair.find('=');
    std::string key = percent_decode(std::string_view(pair).substr(0, eq));
    std::string value = eq == std::string::npos
                            ? std::string()
                            : percent_decode(std::string_view(pair).substr(eq + 1));
    result.insert_or_assign(std::move(key), std::move(value));
  }
  return result;
}

// Beast 1.74 hands out boost::string_view.
std::string_view to_std(beast::string_view text) { return {text.data(), text.size()}; }

std::string lower_ascii(std::string_view text) {
  std::string result(text);
  for (char& c : result) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return result;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && lower_ascii(a) == lower_ascii(b);
}

class SessionBase;

// State shared by the server object, its I/O threads and every session. Sessions hold it by
// shared_ptr, so the io_context inside outlives any session, even one a Responder thread
// still references after the HttpServer object is gone.
struct Core : std::enable_shared_from_this<Core> {
  Core(HttpServerOptions options_in, HttpHandler handler_in)
      : options(std::move(options_in)), handler(std::move(handler_in)) {}

  void bind();
  void start();
  void stop();
  void do_accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
  void close_acceptor();
  void forget(SessionBase* session);

  net::io_context ioc;  // first member: destroyed last, after everything that uses it
  HttpServerOptions options;
  HttpHandler handler;  // called on I/O threads only; reset by stop() once they are joined
  std::optional<ssl::context> tls;  // set when options.tls is: every session speaks TLS
  // The acceptor and its retry timer share one strand so stop() can close them safely.
  tcp::acceptor acceptor{net::make_strand(ioc)};
  net::steady_timer accept_retry{acceptor.get_executor()};
  std::uint16_t port = 0;

  std::mutex sessions_mutex;  // guards the three fields below
  bool stopping = false;
  bool logged_at_capacity = false;
  // Owns every open session; a session removes itself when it closes.
  std::unordered_map<SessionBase*, std::shared_ptr<SessionBase>> sessions;

  std::mutex lifecycle_mutex;  // guards the three fields below
  bool started = false;
  bool stopped = false;
  std::vector<std::thread> threads;
};

// What Core and Responders see of a connection, whatever its stream.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual const net::any_io_executor& executor() const = 0;
  virtual void start() = 0;
  virtual void respond(std::uint64_t request, HttpResponse response) = 0;
  virtual void close() = 0;
};

// What a Responder carries: copies of one Responder share the "called" flag.
struct ResponderState {
  ResponderState(std::weak_ptr<SessionBase> session_in, std::uint64_t request_in)
      : session(std::move(session_in)), request(request_in) {}
  std::atomic<bool> called{false};
  const std::weak_ptr<SessionBase> session;
  const std::uint64_t request;  // which request on the connection this answers
};

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// One TCP connection, plain or TLS: one code path, with the few differences (handshake,
// closing) behind `kTls`. Every member function runs on the session's strand, except
// executor(), which reads a const member.
template <class Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

 public:
  // `tls_context...` is the ssl::context of a TlsStream, nothing for a PlainStream.
  template <class... TlsContext>
  Session(std::shared_ptr<Core> core, tcp::socket socket, TlsContext&... tls_context)
      : core_(std::move(core)),
        stream_(std::move(socket), tls_context...),
        executor_(stream_.get_executor()) {}

  const net::any_io_executor& executor() const override { return executor_; }

  void start() override {
    if (closed_) return;
    if constexpr (kTls) {
      transport().expires_after(kHandshakeTimeout);
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (self->closed_) return;
                                // Scanners and plain-HTTP clients end here; not worth a warning.
                                if (ec) {
                                  spdlog::debug("http: TLS handshake failed: {}", ec.message());
                                  return self->close();
                                }
                                self->read_request();
                              });
    } else {
      read_request();
    }
  }

  void respond(std::uint64_t request, HttpResponse response) override {
    if (closed_ || !pending_ || pending_->request != request) return;
    pending_.reset();
    stop_watching();
    write_response(std::move(response), keep_alive_);
  }

  void close() override {
    if (closed_) return;
    closed_ = true;
    const auto self = this->shared_from_this();  // the registry entry may be the last reference
    pending_.reset();
    watching_ = false;
    transport().close();  // completes whatever is pending with operation_aborted
    core_->forget(this);
  }

 private:
  beast::tcp_stream& transport() { return beast::get_lowest_layer(stream_); }

  void read_request() {
    const auto& options = core_->options;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(
        options.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
    parser_->body_limit(static_cast<std::uint64_t>(options.max_body_bytes));
    // One deadline for the whole request, not per read: a client trickling a byte at a time
    // (slowloris) is cut off like a silent one.
    transport().expires_after(options.idle_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_read(ec);
                     });
  }

  void on_read(beast::error_code ec) {
    if (closed_) return;
    if (ec == http::error::header_limit) return send_error(431, "request header too large\n");
    if (ec == http::error::body_limit) return send_error(413, "request body too large\n");
    if (ec == http::error::end_of_stream || ec == http::error::partial_message) return close();
    // Other parser errors mean the bytes were not HTTP; socket errors and timeouts just end.
    if (ec && ec.category() == make_error_code(http::error::bad_method).category()) {
      return send_error(400, "malformed request\n");
    }
    if (ec) return close();
    handle_request();
  }

  void handle_request() {
    auto& message = parser_->get();
    HttpRequest request;
    request.method = std::string(to_std(message.method_string()));
    request.target = std::string(to_std(message.target()));
    const std::string_view target = request.target;
    const std::size_t question = target.find('?');
    const std::string_view raw_path = target.substr(0, question);
    request.path = percent_decode(raw_path);
    if (question != std::string_view::npos)
      request.query = parse_query(target.substr(question + 1));
    for (const auto& field : message) {
      auto [it, inserted] = request.headers.try_emplace(lower_ascii(to_std(field.name_string())),
                                                        to_std(field.value()));
      if (!inserted) {  // a repeated header is one comma-separated list (RFC 9110 5.3)
        it->second.append(", ").append(to_std(field.value()));
      }
    }
    request.body = std::move(message.body());
    version_ = message.version();
    keep_alive_ = message.keep_alive();
    head_ = message.method() == http::verb::head;
    parser_.reset();  // a parked long poll should not keep the header buffers

    if (!authorized(request)) return write_response(unauthorized(), keep_alive_);

    // A long poll may wait minutes for its answer: no deadline until the response is written.
    transport().expires_never();
    auto state = std::make_shared<ResponderState>(this->weak_from_this(), ++request_count_);
    pending_ = state;
    Responder responder = make_responder(state);
    try {
      if (!core_->handler) throw std::logic_error("no handler");
      core_->handler(request, responder);
    } catch (const std::exception& e) {
      // The raw path (no query, no decoding): no parameters, no control characters in logs.
      spdlog::error("http: handler for {} {} failed: {}", request.method, raw_path, e.what());
      responder(internal_error());
    } catch (...) {
      spdlog::error("http: handler for {} {} failed with a non-standard exception", request.method,
                    raw_path);
      responder(internal_error());
    }
    if (!state->called.load()) watch_for_hangup();
  }

  // Runs on the I/O thread: a bcrypt check blocks it for the hash's cost, which the cache in
  // BasicAuth pays once per client and minute rather than once per request.
  bool authorized(const HttpRequest& request) const {
    const auto& auth = core_->options.auth;
    if (!auth || auth->is_open(request.path)) return true;
    const auto header = request.headers.find("authorization");
    return header != request.headers.end() && auth->allows(header->second);
  }

  static HttpResponse unauthorized() {
    HttpResponse response;
    response.status = 401;
    response.headers.emplace_back("WWW-Authenticate", std::string(BasicAuth::kChallenge));
    response.body = "unauthorized\n";
    return response;
  }

  static HttpResponse internal_error() {
    HttpResponse response;
    response.status = 500;
    response.body = "internal server error\n";
    return response;
  }

  static Responder make_responder(std::shared_ptr<ResponderState> state) {
    return [state = std::move(state)](HttpResponse response) {
      if (state->called.exchange(true)) return;
      // Holding the session keeps its io_context alive while we post to it. The queued call
      // holds only a weak reference: if the server stops before running it, it is destroyed
      // with the io_context instead of keeping the session (and the io_context) alive.
      const std::shared_ptr<SessionBase> session = state->session.lock();
      if (!session) return;
      net::post(session->executor(), [weak = state->session, request = state->request,
                                      response = std::move(response)]() mutable {
        if (const auto alive = weak.lock()) alive->respond(request, std::move(response));
      });
    };
  }

  // While a handler holds the request no read is outstanding, so nothing would notice a
  // client that gave up on its long poll. Wait for readability instead and peek: end of
  // stream means the client left, data means it pipelined the next request (left for later).
  // Over TLS the data may also be the client's close_notify; then the hang-up is noticed
  // only when the response is written.
  void watch_for_hangup() {
    if (closed_ || buffer_.size() != 0) return;  // pipelined bytes already buffered
    watching_ = true;
    transport().socket().async_wait(tcp::socket::wait_read,
                                    [self = this->shared_from_this(), request = request_count_](
                                        beast::error_code ec) { self->on_readable(ec, request); });
  }

  void on_readable(beast::error_code ec, std::uint64_t request) {
    if (closed_ || !watching_ || request != request_count_ || !pending_) return;
    if (ec == net::error::operation_aborted) return;
    if (ec) return close();
    char byte = 0;
    const ssize_t n =
        ::recv(transport().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) {
      watching_ = false;
      return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      watching_ = false;
      return watch_for_hangup();
    }
    close();  // n == 0: the client closed its end; or a socket error
  }

  void stop_watching() {
    if (!watching_) return;
    watching_ = false;
    beast::error_code ignored;
    transport().socket().cancel(ignored);  // only the readability wait can be outstanding now
  }

  void send_error(unsigned status, std::string body) {
    // We could not parse the request: answer in HTTP/1.1 and close, since the rest of what
    // the client sends cannot be framed.
    version_ = 11;
    head_ = false;
    HttpResponse response;
    response.status = static_cast<int>(status);
    response.body = std::move(body);
    write_response(std::move(response), false);
  }

  static bool valid_header(std::string_view name, std::string_view value) {
    const auto bad = [](char c) { return c == '\r' || c == '\n' || c == '\0'; };
    return !name.empty() && std::none_of(name.begin(), name.end(), bad) &&
           name.find(':') == std::string_view::npos &&
           std::none_of(value.begin(), value.end(), bad);
  }

  void write_response(HttpResponse response, bool keep_alive) {
    response_ = {};
    response_.version(version_);
    const unsigned status = response.status >= 100 && response.status <= 999
                                ? static_cast<unsigned>(response.status)
                                : 500u;
    response_.result(status);
    response_.set(http::field::server, "lagwatch");
    if (!response.content_type.empty() && valid_header("content-type", response.content_type)) {
      response_.set(http::field::content_type, response.content_type);
    }
    for (const auto& [name, value] : response.headers) {
      if (equals_ignoring_case(name, "content-length") ||
          equals_ignoring_case(name, "transfer-encoding") ||
          equals_ignoring_case(name, "connection")) {
        continue;
      }
      if (!valid_header(name, value)) {
        spdlog::warn("http: dropping response header with CR, LF or NUL in it");
        continue;
      }
      response_.insert(name, value);
    }
    // 1xx, 204 and 304 have no body and so no Content-Length. A HEAD response announces the
    // length the body would have but sends none.
    if (status >= 200 && status != 204 && status != 304) {
      auto& pieces = response_.body();
      if (!response.body.empty())
        pieces.push_back(std::make_shared<const std::string>(std::move(response.body)));
      for (auto& p : response.shared_body)
        if (p) pieces.push_back(std::move(p));
      response_.content_length(SharedPiecesBody::size(pieces));
      if (head_) pieces.clear();
    }
    response_.keep_alive(keep_alive);
    transport().expires_after(core_->options.idle_timeout);  // a client that does not read
    http::async_write(stream_, response_,
                      [self = this->shared_from_this(), keep_alive](
                          beast::error_code ec, std::size_t) { self->on_write(ec, keep_alive); });
  }

  void on_write(beast::error_code ec, bool keep_alive) {
    if (closed_) return;
    response_ = {};
    if (ec) return close();
    if (!keep_alive) return linger();
    read_request();  // pipelining: the next request is read only now
  }

  void linger() {
    if constexpr (kTls) {
      // TLS ends with close_notify both ways; a client that does not answer ours is waited
      // for no longer than the plain linger.
      transport().expires_after(kLingerTimeout);
      stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) { self->close(); });
    } else {
      beast::error_code ec;
      transport().socket().shutdown(tcp::socket::shutdown_send, ec);
      if (ec) return close();
      transport().expires_after(kLingerTimeout);  // one deadline for the whole drain
      discard_.resize(kLingerChunk);
      drain();
    }
  }

  void drain() {
    stream_.async_read_some(net::buffer(discard_),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                              if (self->closed_) return;
                              if (ec) return self->close();  // EOF, timeout or error
                              self->drain();
                            });
  }

  const std::shared_ptr<Core> core_;  // first member: the io_context outlives the socket
  Stream stream_;
  const net::any_io_executor executor_;  // the strand all of this session runs on
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<SharedPiecesBody> response_;
  std::shared_ptr<ResponderState> pending_;  // the request awaiting its response, if any
  std::uint64_t request_count_ = 0;
  unsigned version_ = 11;
  bool keep_alive_ = false;
  bool head_ = false;
  bool watching_ = false;  // a readability wait for a hang-up is outstanding
  bool closed_ = false;
  std::vector<char> discard_;  // allocated only when lingering
};

// The server's TLS settings: TLS 1.2 and later, the certificate chain and key, and client
// certificates when a client CA is given. Throws naming the file that does not load.
ssl::context make_tls_context(const TlsOptions& options) {
  ssl::context context(ssl::context::tls_server);
  context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                      ssl::context::single_dh_use);
  if (SSL_CTX_set_min_proto_version(context.native_handle(), TLS1_2_VERSION) != 1) {
    throw std::runtime_error("tls: cannot require TLS 1.2 or later");
  }
  const auto check = [](beast::error_code ec, std::string_view key, const std::string& file) {
    if (ec) {
      throw std::runtime_error(
          fmt::format("tls: cannot load {} \"{}\": {}", key, file, ec.message()));
    }
  };
  beast::error_code ec;
  context.use_certificate_chain_file(options.cert_file, ec);
  check(ec, "cert_file", options.cert_file);
  // OpenSSL also checks here that the key belongs to the certificate.
  context.use_private_key_file(options.key_file, ssl::context::pem, ec);
  check(ec, "key_file", options.key_file);
  if (!options.client_ca_file.empty()) {
    context.load_verify_file(options.client_ca_file, ec);
    check(ec, "client_ca_file", options.client_ca_file);
    context.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  }
  return context;
}

void Core::bind() {
  if (options.tls) tls.emplace(make_tls_context(*options.tls));
  port = listen_on(acceptor, options.listen);
}

void Core::start() {
  const std::lock_guard lock(lifecycle_mutex);
  if (started || stopped) return;
  started = true;
  do_accept();  // no I/O thread runs yet, so touching the acceptor here races with nothing
  const int count = std::max(1, options.threads);
  for (int i = 0; i < count; ++i) {
    threads.emplace_back([this] {
      for (;;) {
        try {
          ioc.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("http: I/O thread caught an exception, continuing: {}", e.what());
        }
      }
    });
  }
}

void Core::stop() {
  const std::lock_guard lock(lifecycle_mutex);
  if (stopped) return;
  stopped = true;
  std::vector<std::shared_ptr<SessionBase>> open;
  {
    const std::lock_guard sessions_lock(sessions_mutex);
    stopping = true;  // from now on on_accept registers no session
    for (const auto& entry : sessions) open.push_back(entry.second);
  }
  if (started) {
    // Each close runs on its own strand. Once the acceptor and every socket are closed, all
    // outstanding operations complete and run() returns in every thread.
    net::post(acceptor.get_executor(), [this] { close_acceptor(); });
    for (auto& session : open) {
      // Weak: run() may already have run out of work (the acceptor closed and this session
      // had closed itself), leaving this call queued until the io_context is destroyed. A
      // strong reference there would form a cycle session -> Core -> io_context -> session.
      net::post(session->executor(), [weak = std::weak_ptr<SessionBase>(session)] {
        if (const auto alive = weak.lock()) alive->close();
      });
    }
    open.clear();
    for (auto& thread : threads) thread.join();
    threads.clear();
  } else {
    close_acceptor();
  }
  {
    const std::lock_guard sessions_lock(sessions_mutex);
    sessions.clear();  // already empty: every session closed itself
  }
  handler = nullptr;
}

void Core::close_acceptor() {
  beast::error_code ignored;
  acceptor.close(ignored);
  accept_retry.cancel();
}

// `this` rather than shared_from_this(): accept handlers run only on the I/O threads, which
// stop() joins while the HttpServer still owns this Core.
void Core::do_accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    on_accept(ec, std::move(socket));
  });
}

void Core::on_accept(beast::error_code ec, tcp::socket socket) {
  if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
  if (ec) {
    spdlog::warn("http: accepting a connection on {} failed: {}", options.listen, ec.message());
    accept_retry.expires_after(kAcceptRetryDelay);
    accept_retry.async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec && acceptor.is_open()) do_accept();
    });
    return;
  }
  std::shared_ptr<SessionBase> session;
  {
    const std::lock_guard lock(sessions_mutex);
    if (!stopping && sessions.size() < options.max_connections) {
      logged_at_capacity = false;
      if (tls) {
        session = std::make_shared<Session<TlsStream>>(shared_from_this(), std::move(socket), *tls);
      } else {
        session = std::make_shared<Session<PlainStream>>(shared_from_this(), std::move(socket));
      }
      sessions.emplace(session.get(), session);
    } else if (!stopping && !logged_at_capacity) {
      logged_at_capacity = true;
      spdlog::warn(
          "http: {} connections open on {}, closing new ones until some finish "
          "(raise max_connections if this is normal load)",
          sessions.size(), options.listen);
    }
  }
  if (session) {
    net::post(session->executor(), [session] { session->start(); });
  } else {
    beast::error_code ignored;
    socket.close(ignored);
  }
  do_accept();
}

void Core::forget(SessionBase* session) {
  const std::lock_guard lock(sessions_mutex);
  sessions.erase(session);
}

}  // namespace

struct HttpServer::Impl {
  std::shared_ptr<Core> core;
};

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler)
    : impl_(std::make_unique<Impl>()) {
  impl_->core = std::make_shared<Core>(std::move(options), std::move(handler));
  impl_->core->bind();
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() { impl_->core->start(); }

void HttpServer::stop() { impl_->core->stop(); }

std::uint16_t HttpServer::port() const { return impl_->core->port; }

}  // namespace lagwatch
