// Loads lagwatch.toml (design §4) into Config; every mistake is "file:line:column: message".
#include "config.h"

#include <curl/curl.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <iterator>
#include <map>
#include <memory>
#include <new>
#include <regex>
#include <sstream>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>

namespace lagwatch {

const char* receiver_type_name(ReceiverType type) {
  switch (type) {
    case ReceiverType::slack:
      return "slack";
    case ReceiverType::pagerduty:
      return "pagerduty";
    case ReceiverType::webhook:
      return "webhook";
    case ReceiverType::alertmanager:
      break;
  }
  return "alertmanager";
}

void apply_override(Thresholds& base, const Thresholds& override_values) {
  const Thresholds& o = override_values;
  if (o.lag_seconds_warning) base.lag_seconds_warning = o.lag_seconds_warning;
  if (o.lag_seconds_critical) base.lag_seconds_critical = o.lag_seconds_critical;
  if (o.lag_bytes_warning) base.lag_bytes_warning = o.lag_bytes_warning;
  if (o.lag_bytes_critical) base.lag_bytes_critical = o.lag_bytes_critical;
}

namespace {

using Keys = std::initializer_list<std::string_view>;
namespace fs = std::filesystem;

constexpr std::string_view kDsnPassword =
    "the dsn contains a password; put it in password_file or password_env";

std::string quote(std::string_view text) { return "\"" + std::string(text) + "\""; }

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

std::string describe(toml::node_type type) {
  switch (type) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

std::string format_number(double value) {
  char buffer[32];
  const auto result = std::to_chars(std::begin(buffer), std::end(buffer), value);
  return std::string(buffer, result.ptr);
}

// Optimal string alignment distance: Levenshtein plus swaps of neighbouring letters, so a
// transposition ("intreval") is one edit, not two.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t substitution = d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, substitution});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// The allowed key a typo of at most two edits would explain; the first one on a tie.
std::optional<std::string_view> suggestion(std::string_view key, Keys allowed) {
  std::optional<std::string_view> best;
  std::size_t best_distance = 3;
  for (std::string_view candidate : allowed) {
    const std::size_t distance = edit_distance(key, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

// [A-Za-z0-9_.-]+: names end up in metric labels and URL paths.
bool is_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

bool is_port(std::string_view port) {
  if (port.empty() || port.size() > 5) return false;
  int value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  return ec == std::errc() && end == port.data() + port.size() && value >= 1 && value <= 65535;
}

// "host:port" or "[v6]:port"; ":port" too when `allow_empty_host` (a listen address).
bool is_host_port(std::string_view text, bool allow_empty_host) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || !is_port(text.substr(colon + 1))) return false;
  const std::string_view host = text.substr(0, colon);
  if (host.empty()) return allow_empty_host;
  if (host.front() == '[') {
    return host.size() > 2 && host.back() == ']' &&
           host.substr(1, host.size() - 2).find_first_of("[] ") == std::string_view::npos;
  }
  return std::none_of(host.begin(), host.end(), [](char c) {
    return c == ':' || c == '[' || c == ']' || c == '/' ||
           std::isspace(static_cast<unsigned char>(c));
  });
}

// Whole contents of a file, or nullopt with the system's reason ("No such file or directory").
std::optional<std::string> read_file(const fs::path& path, std::string* error) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    *error = std::generic_category().message(errno);
    return std::nullopt;
  }
  std::string contents;
  char buffer[4096];
  std::size_t count = 0;
  while ((count = std::fread(buffer, 1, sizeof buffer, file)) > 0) contents.append(buffer, count);
  const int read_error = std::ferror(file) != 0 ? errno : 0;
  std::fclose(file);
  if (read_error != 0) {
    *error = std::generic_category().message(read_error);
    return std::nullopt;
  }
  return contents;
}

std::string position(const toml::source_position& where) {
  return std::to_string(where.line) + ":" + std::to_string(where.column);
}

bool before(const toml::source_position& a, const toml::source_position& b) {
  return a.line != b.line ? a.line < b.line : a.column < b.column;
}

// Formats mistakes. `context` names the entity a table belongs to (`cluster "orders": node
// "pg-b": `); `prefix` is the dotted path from that entity to the table ("thresholds.").
class Scope {
 public:
  explicit Scope(std::string file) : file_(std::move(file)) {}

  Scope entity(std::string_view name) const {
    Scope scope = *this;
    scope.context_ += std::string(name) + ": ";
    scope.prefix_.clear();
    return scope;
  }

  Scope nested(std::string_view key) const {
    Scope scope = *this;
    scope.prefix_ += std::string(key) + ".";
    return scope;
  }

  // A key as the messages show it, quoted with its path: "thresholds.lag_bytes".
  std::string key(std::string_view name) const { return quote(prefix_ + std::string(name)); }

  [[noreturn]] void fail(const toml::source_region& where, std::string_view message) const {
    throw ConfigError(file_ + ":" + position(where.begin) + ": " + context_ + std::string(message));
  }

 private:
  std::string file_;
  std::string context_;
  std::string prefix_;
};

// One TOML table being read. Getters return nullopt for an absent key and throw for a
// value of the wrong type or out of range; the *_of forms check a value already found and
// name it `subject` in messages.
class Table {
 public:
  Table(const toml::table& table, Scope scope) : table_(table), scope_(std::move(scope)) {}

  const toml::table& toml() const { return table_; }
  const Scope& scope() const { return scope_; }
  std::string key(std::string_view name) const { return scope_.key(name); }
  const toml::node* find(std::string_view name) const { return table_.get(name); }

  [[noreturn]] void fail(const toml::source_region& where, std::string_view message) const {
    scope_.fail(where, message);
  }

  [[noreturn]] void type_error(std::string_view subject, const toml::node& value,
                               std::string_view expected) const {
    fail(value.source(), std::string(subject) + " must be " + std::string(expected) + ", not " +
                             describe(value.type()));
  }

  // Refuses the first key, in file order, that is not in `allowed`.
  void allow_only(Keys allowed) const {
    const toml::key* unknown = nullptr;
    for (auto&& [name, value] : table_) {
      if (std::find(allowed.begin(), allowed.end(), name.str()) != allowed.end()) continue;
      if (unknown == nullptr || before(name.source().begin, unknown->source().begin)) {
        unknown = &name;
      }
    }
    if (unknown == nullptr) return;
    std::string message = "unknown key " + key(unknown->str());
    if (const auto close = suggestion(unknown->str(), allowed)) {
      message += " (did you mean " + key(*close) + "?)";
    }
    fail(unknown->source(), message);
  }

  // Refuses `name` with `message`, pointing at the key itself.
  void refuse_key(std::string_view name, std::string_view message) const {
    const auto it = table_.find(name);
    if (it != table_.end()) fail(it->first.source(), message);
  }

  const toml::node& required(std::string_view name) const {
    const toml::node* value = find(name);
    if (value == nullptr) fail(table_.source(), "missing required key " + key(name));
    return *value;
  }

  std::string string_of(const toml::node& value, std::string_view subject) const {
    const auto* text = value.as_string();
    if (text == nullptr) type_error(subject, value, "a string");
    return text->get();
  }

  // Durations in the config are periods and deadlines: zero is never meaningful.
  Duration duration_of(const toml::node& value, std::string_view subject) const {
    const auto* text = value.as_string();
    if (text == nullptr) type_error(subject, value, R"(a duration string like "1s")");
    std::string error;
    const std::optional<Duration> duration = parse_duration(text->get(), &error);
    if (!duration) fail(value.source(), std::string(subject) + ": " + error);
    if (*duration == Duration::zero()) {
      fail(value.source(), std::string(subject) + " must be longer than 0s");
    }
    return *duration;
  }

  Bytes bytes_of(const toml::node& value, std::string_view subject) const {
    if (const auto* integer = value.as_integer()) {
      if (integer->get() < 0) fail(value.source(), std::string(subject) + " must not be negative");
      return Bytes{static_cast<std::uint64_t>(integer->get())};
    }
    const auto* text = value.as_string();
    if (text == nullptr) {
      type_error(subject, value, R"(a size like "10MiB" or a whole number of bytes)");
    }
    std::string error;
    const std::optional<Bytes> bytes = parse_bytes(text->get(), &error);
    if (!bytes) fail(value.source(), std::string(subject) + ": " + error);
    return *bytes;
  }

  // A finite number, at least 0: lags and lag limits.
  double number_of(const toml::node& value, std::string_view subject) const {
    double number = 0;
    if (const auto* integer = value.as_integer()) {
      number = static_cast<double>(integer->get());
    } else if (const auto* floating = value.as_floating_point()) {
      number = floating->get();
    } else {
      type_error(subject, value, "a number");
    }
    if (!std::isfinite(number)) fail(value.source(), std::string(subject) + " must be finite");
    if (number < 0) fail(value.source(), std::string(subject) + " must not be negative");
    return number;
  }

  std::optional<std::string> string(std::string_view name) const {
    const toml::node* value = find(name);
    if (value == nullptr) return std::nullopt;
    return string_of(*value, key(name));
  }

  std::optional<Duration> duration(std::string_view name) const {
    const toml::node* value = find(name);
    if (value == nullptr) return std::nullopt;
    return duration_of(*value, key(name));
  }

  std::optional<Bytes> bytes(std::string_view name) const {
    const toml::node* value = find(name);
    if (value == nullptr) return std::nullopt;
    return bytes_of(*value, key(name));
  }

  std::optional<double> number(std::string_view name) const {
    const toml::node* value = find(name);
    if (value == nullptr) return std::nullopt;
    return number_of(*value, key(name));
  }

  std::optional<int> integer(std::string_view name, int min) const {
    const toml::node* value = find(name);
    if (value == nullptr) return std::nullopt;
    const auto* integer = value->as_integer();
    if (integer == nullptr) type_error(key(name), *value, "an integer");
    if (integer->get() < min) {
      fail(value->source(), key(name) + " must be at least " + std::to_string(min) + ", not " +
                                std::to_string(integer->get()));
    }
    if (integer->get() > INT_MAX) {
      fail(value->source(), key(name) + " must be at most " + std::to_string(INT_MAX));
    }
    return static_cast<int>(integer->get());
  }

  std::optional<bool> boolean(std::string_view name) const {
    const toml::node* value = find(name);
    if (value == nullptr) return std::nullopt;
    const auto* flag = value->as_boolean();
    if (flag == nullptr) type_error(key(name), *value, "true or false");
    return flag->get();
  }

  std::optional<Table> table(std::string_view name) const {
    const toml::node* value = find(name);
    if (value == nullptr) return std::nullopt;
    const toml::table* table = value->as_table();
    if (table == nullptr) type_error(key(name), *value, "a table");
    return Table(*table, scope_.nested(name));
  }

  // The entries of an array of tables such as [[cluster]]; `header` shows the syntax.
  std::vector<const toml::table*> tables(std::string_view name, std::string_view header) const {
    std::vector<const toml::table*> entries;
    const toml::node* value = find(name);
    if (value == nullptr) return entries;
    const toml::array* array = value->as_array();
    if (array == nullptr || !(array->empty() || array->is_array_of_tables())) {
      type_error(key(name), *value, "an array of tables (" + std::string(header) + ")");
    }
    for (const toml::node& entry : *array) entries.push_back(entry.as_table());
    return entries;
  }

 private:
  const toml::table& table_;
  Scope scope_;
};

// Reads a [warning, critical] pair and checks warning <= critical. `read` converts one
// element; `show` prints one for the message.
template <typename T, typename Read, typename Show>
std::optional<std::pair<T, T>> read_levels(const Table& table, std::string_view name, Read read,
                                           Show show) {
  const toml::node* value = table.find(name);
  if (value == nullptr) return std::nullopt;
  const toml::array* pair = value->as_array();
  if (pair == nullptr) table.type_error(table.key(name), *value, "an array [warning, critical]");
  if (pair->size() != 2) {
    table.fail(value->source(), table.key(name) + " must be [warning, critical], not " +
                                    std::to_string(pair->size()) + " values");
  }
  const toml::node& warning_node = *pair->get(0);
  const toml::node& critical_node = *pair->get(1);
  const T warning = read(warning_node, table.key(name) + " warning");
  const T critical = read(critical_node, table.key(name) + " critical");
  if (critical < warning) {
    table.fail(value->source(), table.key(name) + " warning (" + show(warning_node) +
                                    ") must not be above critical (" + show(critical_node) + ")");
  }
  return std::pair{warning, critical};
}

// The "thresholds" table under `parent`, if any; only the levels it sets.
Thresholds read_thresholds(const Table& parent) {
  Thresholds levels;
  const std::optional<Table> table = parent.table("thresholds");
  if (!table) return levels;
  table->allow_only({"lag_seconds", "lag_bytes"});
  const auto read_seconds = [&](const toml::node& v, const std::string& subject) {
    return table->number_of(v, subject);
  };
  const auto show_seconds = [&](const toml::node& v) {
    return format_number(table->number_of(v, ""));
  };
  if (const auto seconds = read_levels<double>(*table, "lag_seconds", read_seconds, show_seconds)) {
    levels.lag_seconds_warning = seconds->first;
    levels.lag_seconds_critical = seconds->second;
  }
  const auto read_bytes = [&](const toml::node& v, const std::string& subject) {
    return table->bytes_of(v, subject);
  };
  const auto show_bytes = [](const toml::node& v) {
    return v.is_string() ? v.as_string()->get() : std::to_string(v.as_integer()->get());
  };
  if (const auto bytes = read_levels<Bytes>(*table, "lag_bytes", read_bytes, show_bytes)) {
    levels.lag_bytes_warning = bytes->first;
    levels.lag_bytes_critical = bytes->second;
  }
  return levels;
}

std::optional<Secret> read_secret(const Table& table, std::string_view file_key,
                                  std::string_view env_key, const fs::path& base_dir) {
  const toml::node* file = table.find(file_key);
  const toml::node* env = table.find(env_key);
  if (file != nullptr && env != nullptr) {
    table.fail(env->source(),
               "set either " + quote(file_key) + " or " + quote(env_key) + ", not both");
  }
  if (file != nullptr) {
    fs::path path = table.string_of(*file, table.key(file_key));
    if (path.is_relative()) path = base_dir / path;
    std::string error;
    std::optional<std::string> value = read_file(path, &error);
    if (!value) {
      table.fail(file->source(), "cannot read " + std::string(file_key) + " " +
                                     quote(path.string()) + ": " + error);
    }
    // Files written by editors and `echo` end with a newline that is not part of the secret.
    if (value->ends_with("\r\n")) {
      value->resize(value->size() - 2);
    } else if (value->ends_with('\n')) {
      value->pop_back();
    }
    if (value->empty()) {
      table.fail(file->source(), std::string(file_key) + " " + quote(path.string()) + " is empty");
    }
    return Secret{std::string(file_key) + " " + path.string(), std::move(*value)};
  }
  if (env != nullptr) {
    const std::string name = table.string_of(*env, table.key(env_key));
    const std::string described = std::string(env_key) + " " + quote(name);
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) table.fail(env->source(), described + " is not set");
    if (*value == '\0') table.fail(env->source(), described + " is empty");
    return Secret{std::string(env_key) + " " + name, value};
  }
  return std::nullopt;
}

// ---- DSNs ---------------------------------------------------------------------------------

// The host and port a DSN names, as written; empty when it names none.
struct Endpoint {
  std::string host;
  std::string port;
};

struct CurlUrlCleanup {
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
};
using CurlUrl = std::unique_ptr<CURLU, CurlUrlCleanup>;

// Parses `text` with libcurl; nullopt with curl's reason when it is not a URL.
std::optional<CurlUrl> parse_url(const std::string& text, unsigned int flags, std::string* error) {
  CurlUrl url(curl_url());
  if (!url) throw std::bad_alloc();
  const CURLUcode code = curl_url_set(url.get(), CURLUPART_URL, text.c_str(), flags);
  if (code != CURLUE_OK) {
    *error = curl_url_strerror(code);
    return std::nullopt;
  }
  return url;
}

std::optional<std::string> url_part(const CurlUrl& url, CURLUPart part) {
  char* value = nullptr;
  if (curl_url_get(url.get(), part, &value, 0) != CURLUE_OK) return std::nullopt;
  std::string copy(value);
  curl_free(value);
  return copy;
}

std::string url_decode(std::string_view text) {
  int length = 0;
  char* decoded = curl_easy_unescape(nullptr, text.data(), static_cast<int>(text.size()), &length);
  if (decoded == nullptr) throw std::bad_alloc();
  std::string copy(decoded, static_cast<std::size_t>(length));
  curl_free(decoded);
  return copy;
}

// "a=1&b=%2F" as decoded pairs; split before decoding so an escaped "&" stays in its value.
std::vector<std::pair<std::string, std::string>> query_parameters(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> parameters;
  while (!query.empty()) {
    const std::string_view item = query.substr(0, query.find('&'));
    query.remove_prefix(std::min(query.size(), item.size() + 1));
    const std::size_t equals = item.find('=');
    parameters.emplace_back(
        url_decode(item.substr(0, equals)),
        equals == std::string_view::npos ? std::string() : url_decode(item.substr(equals + 1)));
  }
  return parameters;
}

// "postgresql" for "postgresql://…"; empty when `text` does not start like a URI.
std::string_view uri_scheme(std::string_view text) {
  const std::size_t end = text.find("://");
  if (end == std::string_view::npos || end == 0) return {};
  const std::string_view scheme = text.substr(0, end);
  const bool valid =
      std::isalpha(static_cast<unsigned char>(scheme.front())) &&
      std::all_of(scheme.begin(), scheme.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
      });
  return valid ? scheme : std::string_view();
}

// Refuses a password in a URI DSN and returns the host and port it names. With `libpq`,
// host/hostaddr/port query parameters count too, as libpq lets them override the authority.
Endpoint check_uri_dsn(const Table& node, const toml::node& where, const std::string& dsn,
                       bool libpq) {
  std::string error;
  const std::optional<CurlUrl> url = parse_url(dsn, CURLU_NON_SUPPORT_SCHEME, &error);
  if (!url) node.fail(where.source(), "the dsn is not a valid URI: " + error);
  if (url_part(*url, CURLUPART_PASSWORD)) node.fail(where.source(), kDsnPassword);
  Endpoint endpoint;
  // curl reads "postgresql:///db" as host "db"; libpq reads it as no host (a local socket).
  const std::string_view authority = std::string_view(dsn).substr(dsn.find("://") + 3);
  if (!authority.empty() && authority.front() != '/' && authority.front() != '?') {
    endpoint.host = url_part(*url, CURLUPART_HOST).value_or("");
    endpoint.port = url_part(*url, CURLUPART_PORT).value_or("");
  }
  std::string hostaddr;
  if (const std::optional<std::string> query = url_part(*url, CURLUPART_QUERY)) {
    for (const auto& [key, value] : query_parameters(*query)) {
      if (key == "password") node.fail(where.source(), kDsnPassword);
      if (!libpq) continue;
      if (key == "host") endpoint.host = value;
      if (key == "hostaddr") hostaddr = value;
      if (key == "port") endpoint.port = value;
    }
  }
  if (endpoint.host.empty()) endpoint.host = hostaddr;
  return endpoint;
}

// Reads a libpq "key=value key='quoted value'" string the way libpq's conninfo_parse does,
// refuses a password in it and returns the host and port it names.
Endpoint check_keyword_dsn(const Table& node, const toml::node& where, std::string_view dsn) {
  // Messages give positions, never text: the text around a mistake may be a secret.
  const auto invalid = [&](std::string_view what, std::size_t at) {
    node.fail(where.source(),
              "the dsn is neither a postgresql:// URI nor a valid key=value string: " +
                  std::string(what) + " at character " + std::to_string(at + 1));
  };
  const auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  std::map<std::string, std::string, std::less<>> options;
  std::size_t i = 0;
  while (true) {
    while (i < dsn.size() && is_space(dsn[i])) ++i;
    if (i == dsn.size()) break;
    const std::size_t key_start = i;
    while (i < dsn.size() && dsn[i] != '=' && !is_space(dsn[i])) ++i;
    const std::string key(dsn.substr(key_start, i - key_start));
    while (i < dsn.size() && is_space(dsn[i])) ++i;
    if (key.empty()) invalid("expected a keyword", i);
    if (i == dsn.size() || dsn[i] != '=') invalid("expected \"=\"", i);
    ++i;
    while (i < dsn.size() && is_space(dsn[i])) ++i;
    std::string value;
    if (i < dsn.size() && dsn[i] == '\'') {
      const std::size_t quote_start = i++;
      while (true) {
        if (i == dsn.size()) invalid("unterminated quoted value", quote_start);
        if (dsn[i] == '\'') break;
        if (dsn[i] == '\\' && i + 1 < dsn.size()) ++i;
        value += dsn[i++];
      }
      ++i;
    } else {
      while (i < dsn.size() && !is_space(dsn[i])) {
        if (dsn[i] == '\\' && i + 1 < dsn.size()) ++i;
        value += dsn[i++];
      }
    }
    if (key == "password") node.fail(where.source(), kDsnPassword);
    options[key] = std::move(value);
  }
  const auto option = [&](std::string_view key) {
    const auto it = options.find(key);
    return it == options.end() ? std::string() : it->second;
  };
  Endpoint endpoint{option("host"), option("port")};
  if (endpoint.host.empty()) endpoint.host = option("hostaddr");
  return endpoint;
}

// Checks the dsn for the engine and returns the host and port it names.
Endpoint check_dsn(const Table& node, const toml::node& where, const std::string& dsn,
                   std::string_view engine) {
  const std::string_view scheme = uri_scheme(dsn);
  if (engine == "mysql") {
    if (!iequals(scheme, "mysql") && !iequals(scheme, "mariadb")) {
      node.fail(where.source(),
                "a mysql dsn must be a mysql:// or mariadb:// URI, e.g. "
                R"("mysql://lagwatch@10.0.0.2:3306/")");
    }
    return check_uri_dsn(node, where, dsn, /*libpq=*/false);
  }
  if (scheme.empty()) return check_keyword_dsn(node, where, dsn);
  if (!iequals(scheme, "postgresql") && !iequals(scheme, "postgres")) {
    node.fail(where.source(),
              "a postgres dsn must be a postgresql:// URI or a key=value string, not a " +
                  quote(std::string(scheme) + "://") + " URI");
  }
  return check_uri_dsn(node, where, dsn, /*libpq=*/true);
}

// "host:port" from what the DSN names, with the engine's default port.
std::string address_from(const Table& node, const toml::node& where, const Endpoint& endpoint,
                         std::string_view engine) {
  std::string_view host = endpoint.host;
  if (host.empty() || host.front() == '/' || host.front() == '@' ||
      host.find(',') != std::string_view::npos) {
    node.fail(where.source(),
              "the dsn names no single TCP host to take \"address\" from; set \"address\" to "
              "the host:port routers should use");
  }
  std::string port = endpoint.port;
  if (port.empty()) port = engine == "mysql" ? "3306" : "5432";
  if (!is_port(port)) {
    node.fail(where.source(), "the dsn's port is not a number from 1 to 65535");
  }
  const bool bare_ipv6 = host.front() != '[' && host.find(':') != std::string_view::npos;
  return bare_ipv6 ? "[" + std::string(host) + "]:" + port : std::string(host) + ":" + port;
}

// ---- Sections -----------------------------------------------------------------------------

struct Defaults {
  Duration interval = std::chrono::seconds(1);
  Duration timeout = std::chrono::milliseconds(800);
  Thresholds thresholds;
};

// Checks that timeout < interval, pointing at whichever of them `table` sets.
void check_timeout(const Table& table, Duration interval, Duration timeout,
                   std::string_view inherited_from) {
  const toml::node* interval_node = table.find("interval");
  const toml::node* timeout_node = table.find("timeout");
  if ((interval_node == nullptr && timeout_node == nullptr) || timeout < interval) return;
  const auto shown = [&](const toml::node* node, Duration value) {
    std::string text = format_duration(value);
    if (node == nullptr) text += ", from " + std::string(inherited_from);
    return text;
  };
  table.fail(timeout_node != nullptr ? timeout_node->source() : interval_node->source(),
             table.key("timeout") + " (" + shown(timeout_node, timeout) +
                 ") must be shorter than " + table.key("interval") + " (" +
                 shown(interval_node, interval) + ")");
}

Defaults load_defaults(const Table& root) {
  Defaults defaults;
  defaults.thresholds.lag_seconds_warning = 1.0;
  defaults.thresholds.lag_seconds_critical = 5.0;
  defaults.thresholds.lag_bytes_warning = Bytes{10ULL << 20};
  defaults.thresholds.lag_bytes_critical = Bytes{100ULL << 20};
  const std::optional<Table> table = root.table("defaults");
  if (!table) return defaults;
  table->allow_only({"interval", "timeout", "thresholds"});
  defaults.interval = table->duration("interval").value_or(defaults.interval);
  defaults.timeout = table->duration("timeout").value_or(defaults.timeout);
  check_timeout(*table, defaults.interval, defaults.timeout, "the built-in default");
  apply_override(defaults.thresholds, read_thresholds(*table));
  return defaults;
}

// [server.tls]. Each file is read once here so that a wrong path is reported with its
// position; OpenSSL parses them when the server starts.
TlsOptions load_tls(const Table& tls, const fs::path& base_dir) {
  tls.allow_only({"cert_file", "key_file", "client_ca_file"});
  TlsOptions options;
  for (auto [key, field, required] :
       {std::tuple{"cert_file", &options.cert_file, true},
        std::tuple{"key_file", &options.key_file, true},
        std::tuple{"client_ca_file", &options.client_ca_file, false}}) {
    const toml::node* value = required ? &tls.required(key) : tls.find(key);
    if (value == nullptr) continue;
    fs::path path = tls.string_of(*value, tls.key(key));
    if (path.is_relative()) path = base_dir / path;
    std::string error;
    if (!read_file(path, &error)) {
      tls.fail(value->source(),
               "cannot read " + std::string(key) + " " + quote(path.string()) + ": " + error);
    }
    *field = path.string();
  }
  return options;
}

// [server.basic_auth]. A value that is not a password hash is refused without being quoted:
// it may well be a plain password.
BasicAuthOptions load_basic_auth(const Table& auth) {
  auth.allow_only({"users", "metrics_open"});
  BasicAuthOptions options;
  options.metrics_open = auth.boolean("metrics_open").value_or(false);
  auth.required("users");
  const std::optional<Table> users = auth.table("users");
  if (users->toml().empty()) {
    auth.fail(users->toml().source(),
              auth.key("users") +
                  " is empty: nobody could log in (remove [server.basic_auth] "
                  "to turn basic auth off)");
  }
  for (auto&& [name, value] : users->toml()) {
    const std::string user(name.str());
    if (user.find(':') != std::string::npos) {
      users->fail(name.source(), "user name " + quote(user) + " must not contain ':'");
    }
    const std::string hash = users->string_of(value, users->key(user));
    if (const std::optional<std::string> error = password_hash_error(hash)) {
      users->fail(value.source(), users->key(user) + ": " + *error);
    }
    options.users.emplace(user, hash);
  }
  return options;
}

ServerConfig load_server(const Table& root, const fs::path& base_dir) {
  ServerConfig server;
  const std::optional<Table> table = root.table("server");
  if (!table) return server;
  table->allow_only({"listen", "agent_listen", "shard", "tls", "basic_auth"});
  if (const std::optional<Table> tls = table->table("tls")) server.tls = load_tls(*tls, base_dir);
  if (const std::optional<Table> auth = table->table("basic_auth")) {
    server.basic_auth = load_basic_auth(*auth);
  }
  if (const std::optional<std::string> shard = table->string("shard")) {
    int index = -1, count = 0;
    char slash = 0;
    std::istringstream in(*shard);
    if (!(in >> index >> slash >> count) || slash != '/' || !in.eof() || count < 1 || index < 0 ||
        index >= count) {
      table->fail(table->find("shard")->source(),
                  table->key("shard") + R"( must be "i/n" with 0 <= i < n, e.g. "0/2", not ")" +
                      *shard + "\"");
    }
    server.shard_index = index;
    server.shard_count = count;
  }
  for (auto [key, field] : {std::pair{"listen", &server.listen},
                            std::pair{"agent_listen", &server.agent_listen}}) {
    if (const std::optional<std::string> value = table->string(key)) {
      if (!is_host_port(*value, /*allow_empty_host=*/true)) {
        table->fail(table->find(key)->source(),
                    table->key(key) + R"( must be "host:port" or ":port", e.g. ":9817")");
      }
      *field = *value;
    }
  }
  return server;
}

// The routing values a cluster may override as well; push targets are read elsewhere.
void read_routing_values(const Table& table, RoutingConfig& routing) {
  if (const auto value = table.number("max_lag_seconds")) routing.max_lag_seconds = *value;
  if (const auto value = table.bytes("max_lag_bytes")) routing.max_lag_bytes = *value;
  if (const auto value = table.integer("rise", 1)) routing.rise = *value;
  if (const auto value = table.integer("fall", 1)) routing.fall = *value;
  if (const auto value = table.integer("min_serving", 0)) routing.min_serving = *value;
  if (const auto value = table.boolean("fallback_to_primary")) routing.fallback_to_primary = *value;
}

RoutingPush load_push(const Table& push, Duration keepalive, const fs::path& base_dir) {
  push.allow_only({"name", "url", "secret_file", "secret_env", "timeout", "keepalive"});
  RoutingPush target;
  const toml::node& url_node = push.required("url");
  target.url = push.string_of(url_node, push.key("url"));
  const std::string_view scheme = uri_scheme(target.url);
  if (!iequals(scheme, "http") && !iequals(scheme, "https")) {
    push.fail(url_node.source(), push.key("url") + " must be an http:// or https:// URL");
  }
  std::string error;
  const std::optional<CurlUrl> url = parse_url(target.url, 0, &error);
  if (!url) push.fail(url_node.source(), push.key("url") + " is not a valid URL: " + error);
  if (url_part(*url, CURLUPART_PASSWORD)) {
    push.fail(url_node.source(),
              "the url contains a password; put secrets in secret_file or secret_env");
  }
  // The `router` label of lagwatch_router_pushes_total: never the URL, whose path or query
  // may carry a token.
  target.name = push.string("name").value_or(url_part(*url, CURLUPART_HOST).value_or("router") +
                                             (url_part(*url, CURLUPART_PORT)
                                                  ? ":" + *url_part(*url, CURLUPART_PORT)
                                                  : std::string()));
  target.secret = read_secret(push, "secret_file", "secret_env", base_dir);
  target.timeout = push.duration("timeout").value_or(target.timeout);
  target.keepalive = push.duration("keepalive").value_or(keepalive);
  return target;
}

RoutingConfig load_routing(const Table& root, const fs::path& base_dir) {
  RoutingConfig routing;
  const std::optional<Table> table = root.table("routing");
  if (!table) return routing;
  table->allow_only({"max_lag_seconds", "max_lag_bytes", "rise", "fall", "min_serving",
                     "fallback_to_primary", "keepalive", "push"});
  read_routing_values(*table, routing);
  const Duration keepalive = table->duration("keepalive").value_or(std::chrono::seconds(30));
  int index = 0;
  for (const toml::table* push : table->tables("push", "[[routing.push]]")) {
    const Scope scope = root.scope().entity("routing push #" + std::to_string(++index));
    routing.push.push_back(load_push(Table(*push, scope), keepalive, base_dir));
  }
  return routing;
}

// Where a name was first declared, to point at the second one.
using Declared = std::map<std::string, toml::source_position, std::less<>>;

// Reads the required "name" of a cluster or node entry and checks it is well formed and new.
std::string read_name(const Table& entry, std::string_view what, Declared& declared) {
  const toml::node& value = entry.required("name");
  std::string name = entry.string_of(value, entry.key("name"));
  if (!is_name(name)) {
    entry.fail(value.source(), std::string(what) + " name " + quote(name) +
                                   R"( may only use letters, digits, "_", "." and "-")");
  }
  const auto [first, inserted] = declared.emplace(name, value.source().begin);
  if (!inserted) {
    entry.fail(value.source(), "duplicate " + std::string(what) + " name " + quote(name) +
                                   " (first declared at line " +
                                   std::to_string(first->second.line) + ")");
  }
  return name;
}

NodeConfig load_node(const toml::table& entry, const Table& cluster, const ClusterConfig& config,
                     const Thresholds& cluster_thresholds, const fs::path& base_dir,
                     Declared& declared) {
  NodeConfig node_config;
  node_config.name = read_name(Table(entry, cluster.scope()), "node", declared);
  const Table node(entry, cluster.scope().entity("node " + quote(node_config.name)));
  node.allow_only({"name", "dsn", "address", "password_file", "password_env", "application_name",
                   "thresholds"});
  node_config.line = static_cast<int>(entry.source().begin.line);
  node_config.column = static_cast<int>(entry.source().begin.column);

  const toml::node& dsn = node.required("dsn");
  node_config.dsn = node.string_of(dsn, node.key("dsn"));
  if (node_config.dsn.empty()) node.fail(dsn.source(), node.key("dsn") + " must not be empty");
  const Endpoint endpoint = check_dsn(node, dsn, node_config.dsn, config.engine);

  if (const toml::node* address = node.find("address")) {
    node_config.address = node.string_of(*address, node.key("address"));
    if (!is_host_port(node_config.address, /*allow_empty_host=*/false)) {
      node.fail(address->source(),
                node.key("address") + R"( must be "host:port", e.g. "10.0.0.1:5432")");
    }
  } else {
    node_config.address = address_from(node, dsn, endpoint, config.engine);
  }

  node_config.password = read_secret(node, "password_file", "password_env", base_dir);

  if (const toml::node* name = node.find("application_name")) {
    if (config.engine != "postgres") {
      node.fail(name->source(), node.key("application_name") + " only applies to postgres nodes");
    }
    node_config.application_name = node.string_of(*name, node.key("application_name"));
  } else {
    node_config.application_name = node_config.name;
  }

  node_config.thresholds = cluster_thresholds;
  apply_override(node_config.thresholds, read_thresholds(node));
  return node_config;
}

ClusterConfig load_cluster(const toml::table& entry, const Table& root, const Defaults& defaults,
                           const RoutingConfig& routing, const fs::path& base_dir,
                           Declared& declared) {
  ClusterConfig config;
  config.name = read_name(Table(entry, root.scope()), "cluster", declared);
  const Table cluster(entry, root.scope().entity("cluster " + quote(config.name)));
  cluster.allow_only(
      {"name", "engine", "interval", "timeout", "thresholds", "routing", "heartbeat", "node"});
  config.line = static_cast<int>(entry.source().begin.line);
  config.column = static_cast<int>(entry.source().begin.column);

  const toml::node& engine = cluster.required("engine");
  config.engine = cluster.string_of(engine, cluster.key("engine"));
  if (config.engine != "postgres" && config.engine != "mysql") {
    cluster.fail(engine.source(),
                 "unknown engine " + quote(config.engine) + R"(: use "postgres" or "mysql")");
  }

  config.interval = cluster.duration("interval").value_or(defaults.interval);
  config.timeout = cluster.duration("timeout").value_or(defaults.timeout);
  check_timeout(cluster, config.interval, config.timeout, "[defaults]");

  Thresholds thresholds = defaults.thresholds;
  apply_override(thresholds, read_thresholds(cluster));

  config.routing = routing;
  config.routing.push.clear();
  if (const std::optional<Table> overrides = cluster.table("routing")) {
    for (std::string_view top_level_only : {"push", "keepalive"}) {
      overrides->refuse_key(top_level_only, overrides->key(top_level_only) +
                                                " can only be set in the top-level [routing]");
    }
    overrides->allow_only(
        {"max_lag_seconds", "max_lag_bytes", "rise", "fall", "min_serving", "fallback_to_primary"});
    read_routing_values(*overrides, config.routing);
  }

  if (const std::optional<Table> heartbeat = cluster.table("heartbeat")) {
    heartbeat->allow_only({"mode", "table", "interval", "source_server_id"});
    HeartbeatConfig hb;
    const std::string mode = heartbeat->string("mode").value_or("write");
    if (mode != "write" && mode != "read") {
      heartbeat->fail(heartbeat->find("mode")->source(),
                      heartbeat->key("mode") + R"( must be "write" or "read", not )" + quote(mode));
    }
    hb.mode = mode == "read" ? HeartbeatConfig::Mode::read : HeartbeatConfig::Mode::write;
    hb.table = heartbeat->string("table").value_or(
        hb.mode == HeartbeatConfig::Mode::read ? "percona.heartbeat" : "lagwatch.heartbeat");
    // The name goes into SQL text: only plain identifiers, so it can never inject anything.
    static const std::regex identifier_pair(R"(^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$)");
    if (!std::regex_match(hb.table, identifier_pair)) {
      const toml::node* where = heartbeat->find("table");
      heartbeat->fail(where ? where->source() : entry.source(),
                      heartbeat->key("table") + " must be \"schema.table\" of letters, digits and _, not " +
                          quote(hb.table));
    }
    hb.interval = heartbeat->duration("interval").value_or(hb.interval);
    if (const toml::node* id = heartbeat->find("source_server_id")) {
      const std::string key = heartbeat->key("source_server_id");
      if (hb.mode != HeartbeatConfig::Mode::read)
        heartbeat->fail(id->source(), key + R"( is for mode = "read" (a pt-heartbeat table) only)");
      const auto* number = id->as_integer();
      if (number == nullptr) heartbeat->fail(id->source(), key + " must be an integer (a server_id)");
      // MySQL's server_id: 1 to 2^32 - 1 (0 is a server that refuses to replicate).
      if (number->get() < 1 || number->get() > 4294967295LL)
        heartbeat->fail(id->source(), key + " must be a server_id from 1 to 4294967295, not " +
                                          std::to_string(number->get()));
      hb.source_server_id = static_cast<std::uint64_t>(number->get());
    }
    config.heartbeat = hb;
  }

  const std::vector<const toml::table*> nodes = cluster.tables("node", "[[cluster.node]]");
  if (nodes.empty()) {
    cluster.fail(entry.source(), "a cluster needs at least one node: add a [[cluster.node]]");
  }
  Declared node_names;
  for (const toml::table* node : nodes) {
    config.nodes.push_back(load_node(*node, cluster, config, thresholds, base_dir, node_names));
  }
  return config;
}

// ---- [alerting] ---------------------------------------------------------------------------

// The closest of `names` to a mistyped `word`, for "did you mean"; nullopt when none is close.
template <typename Names>
std::optional<std::string_view> closest(std::string_view word, const Names& names) {
  std::optional<std::string_view> best;
  std::size_t best_distance = 3;
  for (std::string_view candidate : names) {
    const std::size_t distance = edit_distance(word, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

std::vector<std::string_view> condition_names() {
  std::vector<std::string_view> names;
  for (const auto& c : kConditions) names.push_back(c.name);
  return names;
}

std::string unknown_condition(std::string_view name) {
  std::string message = "unknown condition " + quote(name);
  if (const auto close = closest(name, condition_names())) {
    message += " (did you mean " + quote(*close) + "?)";
  } else {
    std::string known;
    for (const auto& c : kConditions) known += (known.empty() ? "" : ", ") + std::string(c.name);
    message += " (known: " + known + ")";
  }
  return message;
}

// A duration that may be 0 ("0s": no wait), unlike the periods Table::duration_of reads.
std::optional<Duration> wait_duration(const Table& table, std::string_view name) {
  const toml::node* value = table.find(name);
  if (value == nullptr) return std::nullopt;
  const auto* text = value->as_string();
  if (text == nullptr) table.type_error(table.key(name), *value, R"(a duration string like "30s")");
  std::string error;
  const std::optional<Duration> duration = parse_duration(text->get(), &error);
  if (!duration) table.fail(value->source(), table.key(name) + ": " + error);
  return *duration;
}

// An array of strings, each checked by `check` (which fails with a message or returns T).
template <typename T, typename Check>
std::vector<T> string_list(const Table& table, std::string_view name, Check check) {
  std::vector<T> out;
  const toml::node* value = table.find(name);
  if (value == nullptr) return out;
  const toml::array* array = value->as_array();
  if (array == nullptr) table.type_error(table.key(name), *value, "an array of strings");
  for (const toml::node& item : *array) {
    const std::string text = table.string_of(item, table.key(name) + " entries");
    const T parsed = check(item, text);
    if (std::find(out.begin(), out.end(), parsed) != out.end()) {
      table.fail(item.source(), table.key(name) + " lists " + quote(text) + " twice");
    }
    out.push_back(parsed);
  }
  if (out.empty()) {
    table.fail(value->source(),
               table.key(name) + " must not be empty; leave it out to send every one");
  }
  return out;
}

// Checks that a URL lagwatch will POST to is http(s) and carries no user:password. The URL
// itself is never quoted in a message: it may be a credential.
void check_post_url(const Table& table, const toml::node& where, const std::string& url,
                    std::string_view what) {
  const std::string_view scheme = uri_scheme(url);
  if (!iequals(scheme, "http") && !iequals(scheme, "https")) {
    table.fail(where.source(), std::string(what) + " must be an http:// or https:// URL");
  }
  std::string error;
  const std::optional<CurlUrl> parsed = parse_url(url, 0, &error);
  if (!parsed) table.fail(where.source(), std::string(what) + " is not a valid URL: " + error);
  if (url_part(*parsed, CURLUPART_PASSWORD)) {
    table.fail(where.source(), std::string(what) + " contains a password");
  }
}

AlertReceiver load_receiver(const Table& receiver, const fs::path& base_dir) {
  receiver.allow_only({"name", "type", "url", "url_file", "url_env", "routing_key_file",
                       "routing_key_env", "conditions", "severities", "timeout",
                       "repeat_interval"});
  AlertReceiver config;
  config.line = static_cast<int>(receiver.toml().source().begin.line);
  const toml::node& type_node = receiver.required("type");
  const std::string type = receiver.string_of(type_node, receiver.key("type"));
  if (type == "slack") {
    config.type = ReceiverType::slack;
  } else if (type == "pagerduty") {
    config.type = ReceiverType::pagerduty;
  } else if (type == "webhook") {
    config.type = ReceiverType::webhook;
  } else if (type == "alertmanager") {
    config.type = ReceiverType::alertmanager;
  } else {
    receiver.fail(type_node.source(),
                  "unknown receiver type " + quote(type) +
                      R"(: use "slack", "pagerduty", "webhook" or "alertmanager")");
  }
  config.name = receiver.string("name").value_or(type);
  if (!is_name(config.name)) {
    receiver.fail(receiver.find("name")->source(),
                  "receiver name " + quote(config.name) +
                      R"( may only use letters, digits, "_", "." and "-")");
  }

  const bool secret_url =
      config.type == ReceiverType::slack || config.type == ReceiverType::webhook;
  if (secret_url) {
    receiver.refuse_key("url", "a " + type +
                                   " URL is a credential (its path is the token): put it in "
                                   "url_file or url_env");
  }
  if (config.type == ReceiverType::pagerduty) {
    for (std::string_view key : {"url_file", "url_env"}) {
      receiver.refuse_key(key, receiver.key(key) +
                                   " does not apply to pagerduty: the routing key is the "
                                   R"(secret; set "url" only to reach another Events API v2 )"
                                   "endpoint");
    }
  } else {
    for (std::string_view key : {"routing_key_file", "routing_key_env"}) {
      receiver.refuse_key(key, receiver.key(key) + " only applies to pagerduty receivers");
    }
  }

  const toml::node* where = nullptr;
  if (const toml::node* url = receiver.find("url")) {
    if (receiver.find("url_file") || receiver.find("url_env")) {
      receiver.fail(url->source(), R"(set either "url" or "url_file"/"url_env", not both)");
    }
    config.url = Secret{"url", receiver.string_of(*url, receiver.key("url"))};
    where = url;
  } else if (std::optional<Secret> secret =
                 read_secret(receiver, "url_file", "url_env", base_dir)) {
    config.url = std::move(*secret);
    where = receiver.find("url_file") ? receiver.find("url_file") : receiver.find("url_env");
  } else if (config.type == ReceiverType::pagerduty) {
    config.url = Secret{"the default", std::string(kPagerDutyEventsUrl)};
  } else {
    receiver.fail(
        receiver.toml().source(),
        type + " receiver " + quote(config.name) + " needs " +
            (secret_url ? R"("url_file" or "url_env")" : R"("url" (or "url_file"/"url_env"))"));
  }
  if (where != nullptr) check_post_url(receiver, *where, config.url.value, "the receiver's URL");

  if (config.type == ReceiverType::pagerduty) {
    config.routing_key = read_secret(receiver, "routing_key_file", "routing_key_env", base_dir);
    if (!config.routing_key) {
      receiver.fail(receiver.toml().source(),
                    "pagerduty receiver " + quote(config.name) +
                        R"( needs "routing_key_file" or "routing_key_env")");
    }
  }

  config.conditions = string_list<Condition>(
      receiver, "conditions", [&](const toml::node& item, const std::string& text) {
        const std::optional<Condition> condition = parse_condition(text);
        if (!condition) receiver.fail(item.source(), unknown_condition(text));
        return *condition;
      });
  config.severities = string_list<Severity>(
      receiver, "severities", [&](const toml::node& item, const std::string& text) {
        const std::optional<Severity> severity = parse_severity(text);
        if (!severity) {
          receiver.fail(item.source(),
                        "unknown severity " + quote(text) + R"(: use "warning" or "critical")");
        }
        return *severity;
      });
  config.timeout = receiver.duration("timeout").value_or(config.timeout);
  config.repeat_interval = receiver.duration("repeat_interval");
  if (!config.repeat_interval && config.type == ReceiverType::alertmanager) {
    config.repeat_interval = std::chrono::minutes(1);
  }
  return config;
}

AlertingConfig load_alerting(const Table& root, const fs::path& base_dir) {
  AlertingConfig alerting;
  const std::optional<Table> table = root.table("alerting");
  if (!table) return alerting;
  table->allow_only({"group_wait", "repeat_interval", "keep_firing_for", "state_file",
                     "status_page_url", "runbook_url", "for", "receiver"});
  alerting.group_wait = wait_duration(*table, "group_wait").value_or(alerting.group_wait);
  alerting.repeat_interval = table->duration("repeat_interval").value_or(alerting.repeat_interval);
  alerting.keep_firing_for =
      wait_duration(*table, "keep_firing_for").value_or(alerting.keep_firing_for);
  for (std::string_view key : {"status_page_url", "runbook_url"}) {
    if (const std::optional<std::string> url = table->string(key)) {
      const std::string_view scheme = uri_scheme(*url);
      if (!iequals(scheme, "http") && !iequals(scheme, "https")) {
        table->fail(table->find(key)->source(),
                    table->key(key) + " must be an http:// or https:// URL");
      }
      (key == "runbook_url" ? alerting.runbook_url : alerting.status_page_url) = *url;
    }
  }
  if (const std::optional<Table> durations = table->table("for")) {
    for (auto&& [name, value] : durations->toml()) {
      const std::optional<Condition> condition = parse_condition(name.str());
      if (!condition) durations->fail(name.source(), unknown_condition(name.str()));
      alerting.for_durations[static_cast<std::size_t>(*condition)] =
          *wait_duration(*durations, name.str());
    }
  }

  Declared names;
  for (const toml::table* entry : table->tables("receiver", "[[alerting.receiver]]")) {
    const Table receiver(
        *entry,
        root.scope().entity("alerting receiver #" + std::to_string(alerting.receivers.size() + 1)));
    AlertReceiver config = load_receiver(receiver, base_dir);
    const toml::node* name_node = receiver.find("name");
    const auto [first, inserted] =
        names.emplace(config.name, name_node ? name_node->source().begin : entry->source().begin);
    if (!inserted) {
      receiver.fail(name_node ? name_node->source() : entry->source(),
                    "duplicate receiver name " + quote(config.name) + " (first declared at line " +
                        std::to_string(first->second.line) +
                        "); give each receiver its own \"name\"");
    }
    alerting.receivers.push_back(std::move(config));
  }

  if (const toml::node* state_file = table->find("state_file")) {
    fs::path path = table->string_of(*state_file, table->key("state_file"));
    if (path.empty()) table->fail(state_file->source(), table->key("state_file") + " is empty");
    if (path.is_relative()) path = base_dir / path;
    alerting.state_file = path.string();
  } else if (!alerting.receivers.empty()) {
    table->fail(table->toml().source(),
                "receivers need \"state_file\", where lagwatch keeps which alerts it has sent "
                "(e.g. \"/var/lib/lagwatch/alerts.json\"), so a restart neither re-pages nor "
                "forgets a resolve");
  }
  return alerting;
}

}  // namespace

Config load_config(const std::string& path) {
  std::string error;
  const std::optional<std::string> text = read_file(path, &error);
  if (!text) throw ConfigError(path + ": cannot read the config file: " + error);
  return parse_config(*text, path);
}

Config parse_config(std::string_view text, const std::string& path) {
  toml::table document;
  try {
    document = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    std::string description(e.description());
    // toml++ says "Error while parsing …"; the rest of our messages start in lower case.
    if (description.size() > 1 && std::islower(static_cast<unsigned char>(description[1]))) {
      description[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(description[0])));
    }
    throw ConfigError(path + ":" + position(e.source().begin) + ": " + description);
  }

  const fs::path base_dir = fs::path(path).parent_path();
  const Table root(document, Scope(path));
  root.allow_only({"server", "defaults", "routing", "alerting", "cluster"});

  Config config;
  config.path = path;
  config.server = load_server(root, base_dir);
  const Defaults defaults = load_defaults(root);
  config.routing = load_routing(root, base_dir);
  config.alerting = load_alerting(root, base_dir);
  Declared cluster_names;
  for (const toml::table* cluster : root.tables("cluster", "[[cluster]]")) {
    config.clusters.push_back(
        load_cluster(*cluster, root, defaults, config.routing, base_dir, cluster_names));
  }
  return config;
}

}  // namespace lagwatch
