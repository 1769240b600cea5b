// HTTP basic auth for lagwatch's endpoints: users with hashed passwords (never plain ones),
// verified in constant time, with successes cached briefly so that bcrypt's cost is paid
// once per client rather than once per scrape.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace lagwatch {

// [server.basic_auth]. Each user's value is a password hash: "sha256:<64 hex digits>" (the
// SHA-256 of the password) or a bcrypt hash "$2a$", "$2b$" or "$2y$" as `htpasswd -nbB`
// prints it.
struct BasicAuthOptions {
  std::map<std::string, std::string> users;  // user name -> password hash
  bool metrics_open = false;                 // /metrics answers without credentials

  bool operator==(const BasicAuthOptions&) const = default;
};

// Why `hash` is not a password hash verify_password() understands, or nullopt if it is. The
// message never quotes `hash`: what was written there may be a plain password.
std::optional<std::string> password_hash_error(std::string_view hash);

// Whether `password` matches `hash` (a form password_hash_error() accepts). Constant time in
// the comparison; bcrypt runs libxcrypt's crypt_rn, which takes as long as the hash's cost.
bool verify_password(std::string_view password, std::string_view hash);

// The user and password of an "Authorization: Basic <base64>" header value; nullopt if the
// value is not that (another scheme, bad base64, no ':').
struct BasicCredentials {
  std::string user;
  std::string password;
};
std::optional<BasicCredentials> parse_basic_authorization(std::string_view header);

class BasicAuth {
 public:
  using Now = std::function<std::chrono::steady_clock::time_point()>;

  // Throws std::invalid_argument naming the user whose hash password_hash_error() refuses
  // (the config loader has already refused those, with their position).
  explicit BasicAuth(BasicAuthOptions options, Now now = std::chrono::steady_clock::now);

  // Paths that answer without credentials: /-/healthy and /-/ready always (probes of
  // container runtimes and load balancers carry none, and they reveal nothing), /metrics when
  // metrics_open.
  bool is_open(std::string_view path) const;

  // Whether the Authorization header value `header` names a user and their password. A
  // success is remembered for kCacheFor, keyed by a SHA-256 of the header (the password
  // itself is not kept); failures are never cached. Thread-safe.
  bool allows(std::string_view header) const;

  // The WWW-Authenticate value of a 401.
  static constexpr std::string_view kChallenge = "Basic realm=\"lagwatch\"";
  static constexpr std::chrono::seconds kCacheFor{60};
  static constexpr std::size_t kMaxCached = 1024;

 private:
  using Digest = std::array<unsigned char, 32>;

  BasicAuthOptions options_;
  Now now_;
  mutable std::mutex mutex_;                                               // guards cache_
  mutable std::map<Digest, std::chrono::steady_clock::time_point> cache_;  // -> expiry
};

}  // namespace lagwatch
