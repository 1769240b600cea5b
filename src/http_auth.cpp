// BasicAuth: password hashes (SHA-256 via OpenSSL, bcrypt via libxcrypt) and the success cache.
#include "http_auth.h"

#include <crypt.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <vector>

#include <openssl/crypto.h>
#include <openssl/evp.h>

namespace lagwatch {
namespace {

constexpr std::string_view kSha256Prefix = "sha256:";

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

// bcrypt's own base64 alphabet.
bool is_bcrypt_char(char c) {
  return c == '.' || c == '/' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9');
}

bool is_bcrypt(std::string_view hash) {
  // "$2b$" cost "$" 22 characters of salt and 31 of hash: 60 in all.
  if (hash.size() != 60) return false;
  if (!(hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$"))) {
    return false;
  }
  if (hash[4] < '0' || hash[4] > '9' || hash[5] < '0' || hash[5] > '9' || hash[6] != '$') {
    return false;
  }
  const int cost = (hash[4] - '0') * 10 + (hash[5] - '0');
  if (cost < 4 || cost > 31) return false;
  return std::all_of(hash.begin() + 7, hash.end(), is_bcrypt_char);
}

std::array<unsigned char, 32> sha256(std::string_view data) {
  std::array<unsigned char, 32> digest{};
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1 ||
      length != digest.size()) {
    throw std::runtime_error("SHA-256 failed in OpenSSL");
  }
  return digest;
}

bool verify_sha256(std::string_view password, std::string_view hex) {
  std::array<unsigned char, 32> expected{};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    expected[i] =
        static_cast<unsigned char>(hex_value(hex[2 * i]) * 16 + hex_value(hex[2 * i + 1]));
  }
  const auto actual = sha256(password);
  return CRYPTO_memcmp(actual.data(), expected.data(), expected.size()) == 0;
}

bool verify_bcrypt(std::string_view password, std::string_view hash) {
  // crypt takes C strings: a password with a NUL in it cannot be the one that was hashed.
  if (password.find('\0') != std::string_view::npos) return false;
  const std::string password_text(password);
  const std::string setting(hash);
  // crypt_data is ~32 KiB: not on an I/O thread's stack.
  const auto data = std::make_unique<crypt_data>();
  const char* result =
      crypt_rn(password_text.c_str(), setting.c_str(), data.get(), static_cast<int>(sizeof *data));
  if (result == nullptr || std::string_view(result).size() != hash.size()) return false;
  return CRYPTO_memcmp(result, hash.data(), hash.size()) == 0;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

// Strict standard base64 with padding; nullopt for anything else.
std::optional<std::string> decode_base64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  const std::size_t padding = text.ends_with("==") ? 2 : text.ends_with('=') ? 1 : 0;
  if (text.substr(0, text.size() - padding).find('=') != std::string_view::npos) {
    return std::nullopt;
  }
  std::vector<unsigned char> out(text.size() / 4 * 3);
  const int length =
      EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                      static_cast<int>(text.size()));
  if (length < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding as decoded zero bytes.
  return std::string(reinterpret_cast<const char*>(out.data()),
                     static_cast<std::size_t>(length) - padding);
}

}  // namespace

std::optional<std::string> password_hash_error(std::string_view hash) {
  if (hash.starts_with(kSha256Prefix)) {
    const std::string_view hex = hash.substr(kSha256Prefix.size());
    if (hex.size() == 64 && std::all_of(hex.begin(), hex.end(), is_hex)) return std::nullopt;
    return "a \"sha256:\" hash must be followed by 64 hexadecimal digits";
  }
  if (hash.starts_with("$2")) {
    if (is_bcrypt(hash)) return std::nullopt;
    return "not a well-formed bcrypt hash (\"$2b$<cost>$\" and 53 characters, as `htpasswd -nbB` "
           "prints it)";
  }
  return "must be a password hash, \"sha256:<hex>\" or bcrypt \"$2b$...\", never a plain "
         "password (see docs/configuration.md)";
}

bool verify_password(std::string_view password, std::string_view hash) {
  if (password_hash_error(hash)) return false;
  if (hash.starts_with(kSha256Prefix)) {
    return verify_sha256(password, hash.substr(kSha256Prefix.size()));
  }
  return verify_bcrypt(password, hash);
}

std::optional<BasicCredentials> parse_basic_authorization(std::string_view header) {
  header = trim(header);
  const std::size_t space = header.find(' ');
  if (space == std::string_view::npos || !iequals(header.substr(0, space), "basic")) {
    return std::nullopt;
  }
  const std::optional<std::string> decoded = decode_base64(trim(header.substr(space + 1)));
  if (!decoded) return std::nullopt;
  const std::size_t colon = decoded->find(':');
  if (colon == std::string::npos) return std::nullopt;
  return BasicCredentials{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

BasicAuth::BasicAuth(BasicAuthOptions options, Now now)
    : options_(std::move(options)), now_(std::move(now)) {
  for (const auto& [user, hash] : options_.users) {
    if (const auto error = password_hash_error(hash)) {
      throw std::invalid_argument("basic auth user \"" + user + "\": " + *error);
    }
  }
}

bool BasicAuth::is_open(std::string_view path) const {
  return path == "/-/healthy" || path == "/-/ready" ||
         (options_.metrics_open && path == "/metrics");
}

bool BasicAuth::allows(std::string_view header) const {
  const Digest key = sha256(header);
  const auto now = now_();
  {
    const std::lock_guard lock(mutex_);
    const auto it = cache_.find(key);
    if (it != cache_.end()) {
      if (now < it->second) return true;
      cache_.erase(it);
    }
  }
  const std::optional<BasicCredentials> credentials = parse_basic_authorization(header);
  if (!credentials || options_.users.empty()) return false;
  const auto user = options_.users.find(credentials->user);
  if (user == options_.users.end()) {
    // Check against some user's hash anyway, so that an unknown name takes as long to refuse
    // as a wrong password and response times do not tell which user names exist.
    verify_password(credentials->password, options_.users.begin()->second);
    return false;
  }
  if (!verify_password(credentials->password, user->second)) return false;
  const std::lock_guard lock(mutex_);
  if (cache_.size() >= kMaxCached) {
    // Many distinct valid headers: drop the expired ones, or all if none has expired yet.
    std::erase_if(cache_, [now](const auto& entry) { return entry.second <= now; });
    if (cache_.size() >= kMaxCached) cache_.clear();
  }
  cache_.insert_or_assign(key, now + kCacheFor);
  return true;
}

}  // namespace lagwatch
