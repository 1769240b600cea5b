// lagwatch's one outbound HTTP client (router pushes, alert notifications): a kept-alive libcurl
// handle per worker, how an answer is classified for retry, and the backoff between retries.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "units.h"

namespace lagwatch {

// libcurl's process-wide setup, reference-counted by libcurl. Construct one before starting
// threads that use HttpClient (curl_global_init is not thread-safe in every build).
class HttpClientLibrary {
 public:
  HttpClientLibrary();
  ~HttpClientLibrary();
  HttpClientLibrary(const HttpClientLibrary&) = delete;
  HttpClientLibrary& operator=(const HttpClientLibrary&) = delete;
};

// What one request returned.
struct HttpReply {
  long status = 0;  // 0: no HTTP answer (connect error, timeout, reset, aborted)
  // Why there was no answer, e.g. "Timeout was reached: Connection timed out". Never names the
  // URL: URLs of webhooks carry their token in the path. "" when answered.
  std::string error;
  std::optional<Duration> retry_after;  // from a 429/503 answer (delay-seconds or HTTP date)
  std::string body;                     // the start of the answer's body, for the log
  bool aborted = false;                 // the `stopping` flag cut it short
};

// How a delivery attempt ended.
enum class HttpOutcome {
  success,    // 2xx
  retry,      // no answer, 408, 429 or 5xx: may pass, try again later
  permanent,  // any other status (3xx: redirects are not followed; other 4xx): will not pass
};
HttpOutcome classify_http_status(long http_status);

// Exponential backoff with full jitter before retry number `failures` (1 after the first failed
// attempt): a uniform pick in [0, min(cap, base * 2^(failures-1))), `jitter` in [0, 1) being the
// pick. A Retry-After raises the wait to at least that long, capped at `retry_after_cap` so a
// bogus header cannot silence a receiver for days.
Duration retry_backoff(int failures, std::optional<Duration> retry_after, double jitter,
                       Duration base, Duration cap, Duration retry_after_cap);

// One libcurl easy handle, reused between requests so the connection is kept alive. Not
// thread-safe: one per worker thread.
class HttpClient {
 public:
  // `timeout` bounds each whole request (connect included); `stopping`, when it turns true,
  // aborts a request in flight within about a second (libcurl's progress callback).
  HttpClient(Duration timeout, const std::atomic<bool>& stopping);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // POSTs `body` to `url` with `headers` ("Name: value"). Never throws for network trouble:
  // that is a response with status 0 and an `error`.
  HttpReply post(const std::string& url, const std::string& body,
                 const std::vector<std::string>& headers);

 private:
  struct Handle;  // the CURL* and its callbacks' state; kept out of sight of curl.h's users
  std::unique_ptr<Handle> handle_;
};

// The strings of `url` that an answer may quote back: the URL, its path and query together
// and apart, and each path segment and query value long enough to be a token (8 characters
// or more; masking "api" or "v2" would only garble the message). The URL of a Slack or webhook
// receiver or of a router is a credential: its path or query is the token.
std::vector<std::string> url_secrets(const std::string& url);

// Text from a remote answer made safe for one logfmt value: each of `secrets` in it replaced
// by "<redacted>", then printable ASCII, no quotes. Error pages often quote the request line
// ("Cannot POST /services/T0/B0/XXXX"), so the URL we sent can come back in the answer we log;
// and because only the start of an answer is kept, a text that ends with the start of a secret
// (4 characters or more of it) has that end redacted too.
std::string loggable(const std::string& text, const std::vector<std::string>& secrets = {});

}  // namespace lagwatch
