// Tests for basic auth: password hashes, the Authorization header, the success cache, the
// [server.basic_auth] and [server.tls] config, and HttpServer answering 401.
#include "http_auth.h"

#include <stdlib.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "config.h"
#include "http_server.h"

namespace lagwatch {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Fixed hashes, made with Python's crypt and hashlib:
//   crypt.crypt("s3cret-bcrypt", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2**4))
//   hashlib.sha256(b"scrape-me").hexdigest()
constexpr const char* kBcryptCost4 = "$2b$04$HBZPO37gbUnRHpclcpL4ce3ADDkyuzL7iMmOhfgsvBhxKhgQR2ZaC";
constexpr const char* kBcryptCost10 =
    "$2b$10$z2UzZdtbRGRbNGXuV5uD.uNAc.9Vp.DLXzb9aPyWH/CI.j9.CLaX2";
constexpr const char* kSha256 =
    "sha256:cbf2e4e7c4a228c087068e9f9cc2305faffed4c6e94598cfc4c9d6ddc11409d2";

std::string base64(const std::string& text) {
  std::string out(4 * ((text.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string basic(const std::string& user, const std::string& password) {
  return "Basic " + base64(user + ":" + password);
}

BasicAuthOptions two_users() {
  BasicAuthOptions options;
  options.users = {{"alice", kBcryptCost4}, {"prometheus", kSha256}};
  return options;
}

TEST(HttpAuth, sha256_hash_accepts_its_password_only) {
  EXPECT_TRUE(verify_password("scrape-me", kSha256));
  EXPECT_FALSE(verify_password("scrape-me ", kSha256));
  EXPECT_FALSE(verify_password("", kSha256));
}

TEST(HttpAuth, sha256_hex_may_be_upper_case) {
  EXPECT_TRUE(verify_password(
      "scrape-me", "sha256:CBF2E4E7C4A228C087068E9F9CC2305FAFFED4C6E94598CFC4C9D6DDC11409D2"));
}

TEST(HttpAuth, bcrypt_hash_accepts_its_password_only) {
  EXPECT_TRUE(verify_password("s3cret-bcrypt", kBcryptCost4));
  EXPECT_FALSE(verify_password("s3cret-bcrypT", kBcryptCost4));
  EXPECT_FALSE(verify_password(std::string("s3cret-bcrypt\0x", 15), kBcryptCost4));
}

TEST(HttpAuth, bcrypt_2y_and_2a_prefixes_from_htpasswd_and_php_verify_too) {
  std::string y = kBcryptCost4;
  y[2] = 'y';
  EXPECT_TRUE(verify_password("s3cret-bcrypt", y));
  EXPECT_FALSE(verify_password("wrong", y));
}

TEST(HttpAuth, plain_and_malformed_hashes_are_refused_without_quoting_them) {
  for (const char* value :
       {"hunter2", "", "sha256:abc", "sha256:" /* no digits */, "$2b$04$short",
        "$2b$99$HBZPO37gbUnRHpclcpL4ce3ADDkyuzL7iMmOhfgsvBhxKhgQR2ZaC", "$1$md5$notsupported"}) {
    const auto error = password_hash_error(value);
    ASSERT_TRUE(error.has_value()) << value;
    EXPECT_FALSE(verify_password(value, value)) << value;
  }
  const std::string plain = *password_hash_error("hunter2");
  EXPECT_NE(plain.find("never a plain password"), std::string::npos) << plain;
  EXPECT_EQ(plain.find("hunter2"), std::string::npos) << plain;
  EXPECT_FALSE(password_hash_error(kSha256));
  EXPECT_FALSE(password_hash_error(kBcryptCost10));
}

TEST(HttpAuth, parses_basic_authorization_header) {
  const auto credentials = parse_basic_authorization("Basic " + base64("alice:pa:ss word"));
  ASSERT_TRUE(credentials);
  EXPECT_EQ(credentials->user, "alice");
  EXPECT_EQ(credentials->password, "pa:ss word");                   // only the first ':' separates
  EXPECT_TRUE(parse_basic_authorization("basic " + base64("a:")));  // scheme is case-blind
  EXPECT_TRUE(parse_basic_authorization("Basic " + base64("ab:c")));  // one '=' of padding
}

TEST(HttpAuth, malformed_authorization_headers_are_not_credentials) {
  for (const std::string& header :
       {std::string(""), std::string("Basic"), std::string("Basic "), "Bearer " + base64("a:b"),
        "Basic " + base64("no-colon"), std::string("Basic YWxpY2U6cGFzcw"),  // no padding
        std::string("Basic YWxp!2U6cGFzcw=="), std::string("Basic ====")}) {
    EXPECT_FALSE(parse_basic_authorization(header)) << header;
  }
}

TEST(HttpAuth, allows_known_users_with_their_passwords) {
  const BasicAuth auth(two_users());
  EXPECT_TRUE(auth.allows(basic("alice", "s3cret-bcrypt")));
  EXPECT_TRUE(auth.allows(basic("prometheus", "scrape-me")));
  EXPECT_FALSE(auth.allows(basic("alice", "scrape-me")));  // another user's password
  EXPECT_FALSE(auth.allows(basic("mallory", "scrape-me")));
  EXPECT_FALSE(auth.allows(basic("Alice", "s3cret-bcrypt")));  // names are case-sensitive
  EXPECT_FALSE(auth.allows("Basic !!!!"));
  EXPECT_FALSE(auth.allows(""));
}

TEST(HttpAuth, constructor_refuses_a_plain_password) {
  BasicAuthOptions options;
  options.users = {{"bob", "hunter2"}};
  EXPECT_THROW(BasicAuth{options}, std::invalid_argument);
}

TEST(HttpAuth, probes_are_open_and_metrics_only_when_asked) {
  BasicAuthOptions options = two_users();
  EXPECT_TRUE(BasicAuth(options).is_open("/-/healthy"));
  EXPECT_TRUE(BasicAuth(options).is_open("/-/ready"));
  EXPECT_FALSE(BasicAuth(options).is_open("/metrics"));
  EXPECT_FALSE(BasicAuth(options).is_open("/api/v1/clusters"));
  EXPECT_FALSE(BasicAuth(options).is_open("/-/reload"));
  options.metrics_open = true;
  EXPECT_TRUE(BasicAuth(options).is_open("/metrics"));
  EXPECT_FALSE(BasicAuth(options).is_open("/"));
}

// The cache is only visible as time: a cost-10 bcrypt takes tens of milliseconds, a cached
// answer microseconds.
TEST(HttpAuth, success_is_cached_until_it_expires) {
  auto now = std::chrono::steady_clock::now();
  BasicAuthOptions options;
  options.users = {{"alice", kBcryptCost10}};
  const BasicAuth auth(options, [&now] { return now; });
  const auto timed = [&](const std::string& header) {
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(auth.allows(header));
    return std::chrono::steady_clock::now() - start;
  };
  const std::string header = basic("alice", "s3cret-bcrypt");
  const auto first = timed(header);
  const auto cached = timed(header);
  EXPECT_LT(cached * 4, first) << "first " << first.count() << "ns, cached " << cached.count();
  now += BasicAuth::kCacheFor + 1s;
  const auto expired = timed(header);
  EXPECT_GT(expired, cached * 4) << "expired " << expired.count() << "ns, cached "
                                 << cached.count();
  EXPECT_FALSE(auth.allows(basic("alice", "wrong")));  // a wrong password is never cached
}

// --- config ------------------------------------------------------------------------------

class HttpAuthConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "lagwatch_http_auth_test.XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) const {
    const fs::path path = dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }

  // The ConfigError message of loading `toml`, or "" if it loads.
  std::string error_of(const std::string& toml) const {
    try {
      load_config(write("lagwatch.toml", toml));
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
};

TEST_F(HttpAuthConfig, loads_users_and_metrics_open) {
  const Config config = load_config(write("lagwatch.toml", std::string(R"([server]
listen = ":9817"
[server.basic_auth]
metrics_open = true
users = { alice = ")") + kBcryptCost4 + R"(", prometheus = ")" +
                                                               kSha256 + "\" }\n"));
  ASSERT_TRUE(config.server.basic_auth);
  EXPECT_TRUE(config.server.basic_auth->metrics_open);
  EXPECT_EQ(config.server.basic_auth->users.at("alice"), kBcryptCost4);
  EXPECT_EQ(config.server.basic_auth->users.at("prometheus"), kSha256);
  EXPECT_FALSE(config.server.tls);
}

TEST_F(HttpAuthConfig, plain_password_is_refused_with_its_position_and_not_echoed) {
  const std::string error = error_of(R"([server]
[server.basic_auth]
users = { alice = "hunter2" }
)");
  EXPECT_NE(
      error.find("lagwatch.toml:3:19: \"server.basic_auth.users.alice\": must be a password hash"),
      std::string::npos)
      << error;
  EXPECT_EQ(error.find("hunter2"), std::string::npos) << error;
}

TEST_F(HttpAuthConfig, basic_auth_needs_users) {
  EXPECT_NE(error_of("[server.basic_auth]\nmetrics_open = true\n").find("missing required key"),
            std::string::npos);
  EXPECT_NE(error_of("[server.basic_auth]\nusers = {}\n").find("is empty"), std::string::npos);
  EXPECT_NE(error_of("[server.basic_auth]\nusers = {}\nmetrics_opne = true\n")
                .find("did you mean \"server.basic_auth.metrics_open\"?"),
            std::string::npos);
}

TEST_F(HttpAuthConfig, tls_files_are_resolved_from_the_config_directory_and_must_exist) {
  write("cert.pem", "not parsed at load\n");
  write("key.pem", "not parsed at load\n");
  const Config config = load_config(
      write("lagwatch.toml", "[server.tls]\ncert_file = \"cert.pem\"\nkey_file = \"key.pem\"\n"));
  ASSERT_TRUE(config.server.tls);
  EXPECT_EQ(config.server.tls->cert_file, (dir_ / "cert.pem").string());
  EXPECT_EQ(config.server.tls->client_ca_file, "");
  const std::string missing =
      error_of("[server.tls]\ncert_file = \"cert.pem\"\nkey_file = \"nope.pem\"\n");
  EXPECT_NE(missing.find("lagwatch.toml:3:12: cannot read key_file"), std::string::npos) << missing;
  EXPECT_NE(error_of("[server.tls]\nkey_file = \"key.pem\"\n")
                .find("missing required key "
                      "\"server.tls.cert_file\""),
            std::string::npos)
      << error_of("[server.tls]\nkey_file = \"key.pem\"\n");
}

// --- HttpServer with basic auth -----------------------------------------------------------

std::size_t ignore_body(char*, std::size_t size, std::size_t count, void*) { return size * count; }

struct Answer {
  long status = 0;
  std::string challenge;
};

std::size_t find_challenge(char* data, std::size_t size, std::size_t count, void* out) {
  const std::string line(data, size * count);
  const std::string name = "www-authenticate: ";
  std::string lower = line;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.rfind(name, 0) == 0) {
    std::string value = line.substr(name.size());
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
    static_cast<Answer*>(out)->challenge = value;
  }
  return size * count;
}

Answer get(std::uint16_t port, const std::string& path, const std::string& authorization = "") {
  CURL* curl = curl_easy_init();
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + path;
  Answer answer;
  curl_slist* headers = nullptr;
  if (!authorization.empty()) {
    headers = curl_slist_append(headers, ("Authorization: " + authorization).c_str());
  }
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, ignore_body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, find_challenge);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &answer);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 20'000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &answer.status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return answer;
}

TEST(HttpAuth, server_answers_401_with_challenge_and_never_calls_the_handler) {
  HttpServerOptions options;
  options.listen = "127.0.0.1:0";
  options.auth = std::make_shared<const BasicAuth>(two_users());
  std::atomic<int> handled{0};
  HttpServer server(options, [&handled](const HttpRequest&, Responder respond) {
    ++handled;
    respond(HttpResponse{});
  });
  server.start();
  const Answer none = get(server.port(), "/metrics");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.challenge, "Basic realm=\"lagwatch\"");
  EXPECT_EQ(get(server.port(), "/metrics", basic("prometheus", "wrong")).status, 401);
  EXPECT_EQ(get(server.port(), "/api/v1/clusters", "Bearer x").status, 401);
  EXPECT_EQ(handled.load(), 0);
  EXPECT_EQ(get(server.port(), "/metrics", basic("prometheus", "scrape-me")).status, 200);
  EXPECT_EQ(get(server.port(), "/-/healthy").status, 200);
  EXPECT_EQ(handled.load(), 2);
}

}  // namespace
}  // namespace lagwatch
