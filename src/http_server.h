// The one embedded HTTP/1.1 server behind every lagwatch endpoint (Boost.Beast on Asio).
//
// Handlers answer through a Responder that may be called later, from any thread, so a long
// poll parks a small object instead of a thread: thousands of waiters cost no threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "http_auth.h"

namespace lagwatch {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: "/api/v1/clusters?x=1"
  std::string path;    // percent-decoded path without the query: "/api/v1/clusters"
  // Query parameters, percent-decoded. A key given twice keeps the last value.
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  // Extra headers, sent in order. The server owns Content-Length, Transfer-Encoding and
  // Connection (extra headers by those names are dropped), and drops any name or value
  // containing CR or LF rather than let a value split the response.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // not sent for HEAD requests, nor with 1xx, 204 or 304
  // Sent after `body`, in order, without being copied into one string: pieces of text the
  // handler shares with others (each cluster's part of /metrics, 3 MB in all at 1,000 nodes).
  std::vector<std::shared_ptr<const std::string>> shared_body;
};

// Sends the response. Call exactly once; later calls are ignored. Safe from any thread, also
// after the client went away or the server stopped (then it does nothing), and after the
// HttpServer object itself was destroyed. It holds no strong reference to the connection:
// a stored Responder never keeps a socket open.
//
// While a request waits for its response the connection has no idle timeout (a long poll
// may wait minutes), but the server notices a client that closes its end and drops the
// connection then; a client that half-closes (shutdown(SHUT_WR)) after its request counts
// as gone.
using Responder = std::function<void(HttpResponse)>;

// Called on an I/O thread, one request at a time per connection. It must not block: answer
// at once or park the Responder. An exception it throws becomes a 500 with a generic body.
using HttpHandler = std::function<void(const HttpRequest&, Responder)>;

// [server.tls]: serve HTTPS (TLS 1.2 and later only) with these PEM files.
struct TlsOptions {
  std::string cert_file;       // the server certificate, followed by any intermediates
  std::string key_file;        // its private key, unencrypted
  std::string client_ca_file;  // if set, clients must present a certificate this CA signed

  bool operator==(const TlsOptions&) const = default;
};

struct HttpServerOptions {
  std::string listen = ":9817";  // "host:port", ":port" (all interfaces), "[::1]:port"
  int threads = 2;               // I/O threads; handlers must not block them
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 1024 * 1024;
  // A connection that has not sent a whole request this long after the previous response
  // (or after connecting) is closed; the same bound applies to writing a response.
  std::chrono::seconds idle_timeout{60};
  // Connections beyond this many are accepted and closed at once, so idle clients cannot
  // use up the process's file descriptors.
  std::size_t max_connections = 4096;
  // HTTPS instead of HTTP. The files are read when the server is constructed.
  std::optional<TlsOptions> tls;
  // Basic auth in front of the handler: a request to a path that is not auth->is_open()
  // and without valid credentials gets a 401 and never reaches the handler. Null: none.
  std::shared_ptr<const BasicAuth> auth;
};

class HttpServer {
 public:
  // Binds at once and loads the TLS files; throws std::runtime_error naming the address or
  // the file if it cannot.
  HttpServer(HttpServerOptions options, HttpHandler handler);
  ~HttpServer();  // stops and joins; like stop(), never from inside a handler
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  void start();  // starts the I/O threads; returns at once; does nothing after stop()
  // Closes the listener and every connection, joins the threads, and destroys the handler
  // (releasing whatever it captured). Idempotent. Must not be called from a handler: it
  // would join its own thread.
  void stop();
  std::uint16_t port() const;  // the bound port (useful with port 0)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lagwatch
