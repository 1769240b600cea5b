// The outbound HTTP client (see http_client.h): a libcurl easy handle with lagwatch's defaults,
// and the pure retry classification and backoff every sender shares.
#include "http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <system_error>

namespace lagwatch {

HttpClientLibrary::HttpClientLibrary() { curl_global_init(CURL_GLOBAL_DEFAULT); }
HttpClientLibrary::~HttpClientLibrary() { curl_global_cleanup(); }

HttpOutcome classify_http_status(long http_status) {
  if (http_status >= 200 && http_status < 300) return HttpOutcome::success;
  if (http_status == 0 || http_status == 408 || http_status == 429 || http_status >= 500)
    return HttpOutcome::retry;
  // 3xx (redirects are not followed: a configured URL must be the final one) and other 4xx.
  return HttpOutcome::permanent;
}

Duration retry_backoff(int failures, std::optional<Duration> retry_after, double jitter,
                       Duration base, Duration cap, Duration retry_after_cap) {
  Duration ceiling = base;
  for (int i = 1; i < failures && ceiling < cap; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, cap);
  jitter = std::clamp(jitter, 0.0, 1.0);
  auto wait = std::chrono::duration_cast<Duration>(ceiling * jitter);
  if (retry_after)
    wait = std::max(wait, std::clamp(*retry_after, Duration::zero(), retry_after_cap));
  return wait;
}

namespace {

constexpr std::string_view kRedacted = "<redacted>";
constexpr std::size_t kMinUrlSecret = 8;  // shorter path segments and values are not tokens
constexpr std::size_t kMinCutSecret = 4;  // fewer characters of a token give nothing away

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (std::size_t end; (end = text.find(separator, start)) != std::string::npos; start = end + 1)
    parts.push_back(text.substr(start, end - start));
  parts.push_back(text.substr(start));
  return parts;
}

}  // namespace

std::vector<std::string> url_secrets(const std::string& url) {
  std::vector<std::string> out;
  if (url.empty()) return out;
  out.push_back(url);
  // libcurl's parser, so the parts are the ones libcurl sends.
  const std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> parsed(curl_url(), curl_url_cleanup);
  if (!parsed || curl_url_set(parsed.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK)
    return out;
  const auto part = [&](CURLUPart which) {
    char* value = nullptr;
    std::string text;
    if (curl_url_get(parsed.get(), which, &value, 0) == CURLUE_OK && value != nullptr) text = value;
    curl_free(value);
    return text;
  };
  const auto add = [&](std::string piece) {
    if (piece.size() >= kMinUrlSecret) out.push_back(std::move(piece));
  };
  const std::string path = part(CURLUPART_PATH);
  const std::string query = part(CURLUPART_QUERY);
  if (!query.empty()) add(path + "?" + query);
  add(path);
  add(query);
  for (const std::string& segment : split(path, '/')) add(segment);
  if (!query.empty()) {
    for (const std::string& parameter : split(query, '&')) {
      const std::size_t equals = parameter.find('=');
      add(equals == std::string::npos ? parameter : parameter.substr(equals + 1));
    }
  }
  return out;
}

std::string loggable(const std::string& text, const std::vector<std::string>& secrets) {
  std::string redacted = text;
  // Longest first: a URL goes as one "<redacted>", not as pieces around its path.
  std::vector<std::string_view> longest_first(secrets.begin(), secrets.end());
  std::erase_if(longest_first, [](std::string_view s) { return s.empty(); });
  std::sort(longest_first.begin(), longest_first.end(),
            [](std::string_view a, std::string_view b) { return a.size() > b.size(); });
  for (std::string_view secret : longest_first) {
    for (std::size_t at = redacted.find(secret); at != std::string::npos;
         at = redacted.find(secret, at + kRedacted.size()))
      redacted.replace(at, secret.size(), kRedacted);
  }
  // The kept start of an answer may end inside a secret: redact the longest such ending.
  std::size_t cut = 0;
  for (std::string_view secret : longest_first) {
    for (std::size_t n = std::min(secret.size() - 1, redacted.size()); n >= kMinCutSecret && n > cut;
         --n) {
      if (std::string_view(redacted).ends_with(secret.substr(0, n))) {
        cut = n;
        break;
      }
    }
  }
  if (cut > 0) redacted.replace(redacted.size() - cut, cut, kRedacted);

  std::string out;
  for (char c : redacted) out += (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? c : ' ';
  return out;
}

struct HttpClient::Handle {
  static constexpr std::size_t kResponseKept = 200;

  CURL* curl = nullptr;
  const std::atomic<bool>& stopping;
  std::string response;

  explicit Handle(const std::atomic<bool>& s) : curl(curl_easy_init()), stopping(s) {}
  ~Handle() {
    if (curl) curl_easy_cleanup(curl);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  static size_t on_data(char* data, size_t size, size_t count, void* self) {
    auto& response = static_cast<Handle*>(self)->response;
    const size_t n = size * count;
    response.append(data, std::min(n, kResponseKept - std::min(kResponseKept, response.size())));
    return n;
  }
  static int on_progress(void* self, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<Handle*>(self)->stopping.load() ? 1 : 0;
  }

  // Why the request got no answer, without the URL: libcurl's own error buffer names hosts.
  std::string error_text(CURLcode code) const {
    std::string text = curl_easy_strerror(code);
    long os_errno = 0;
    if (curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK && os_errno != 0)
      text += ": " + std::generic_category().message(static_cast<int>(os_errno));
    return text;
  }
};

HttpClient::HttpClient(Duration timeout, const std::atomic<bool>& stopping)
    : handle_(std::make_unique<Handle>(stopping)) {
  CURL* curl = handle_->curl;
  if (!curl) throw std::runtime_error("curl_easy_init failed");
  // A zero timeout means "none" to libcurl: a hung receiver would hold its worker forever.
  const long timeout_ms = std::max<long>(
      1, static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()));
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "lagwatch/" LAGWATCH_VERSION);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Handle::on_data);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, handle_.get());
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &Handle::on_progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, handle_.get());
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
}

HttpClient::~HttpClient() = default;

HttpReply HttpClient::post(const std::string& url, const std::string& body,
                           const std::vector<std::string>& headers) {
  CURL* curl = handle_->curl;
  HttpReply response;
  curl_slist* list = nullptr;
  std::vector<std::string> all = headers;
  // libcurl would otherwise wait up to a second for "100 Continue" on larger bodies.
  all.push_back("Expect:");
  for (const auto& h : all) {
    curl_slist* appended = curl_slist_append(list, h.c_str());
    if (!appended) {
      curl_slist_free_all(list);
      response.error = curl_easy_strerror(CURLE_OUT_OF_MEMORY);
      return response;
    }
    list = appended;
  }
  handle_->response.clear();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  const CURLcode code = curl_easy_perform(curl);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  curl_slist_free_all(list);
  response.aborted = code == CURLE_ABORTED_BY_CALLBACK;
  if (code == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
    curl_off_t retry_after = 0;
    // libcurl reads both forms of the header: delay-seconds and an HTTP date.
    if ((response.status == 429 || response.status == 503) &&
        curl_easy_getinfo(curl, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0)
      response.retry_after = std::chrono::seconds(retry_after);
  } else {
    response.error = handle_->error_text(code);
  }
  response.body = std::move(handle_->response);
  return response;
}

}  // namespace lagwatch
