// Structured logs (see log.h).
#include "log.h"

#include <atomic>
#include <nlohmann/json.hpp>

namespace lagwatch {
namespace {

std::atomic<LogFormat> g_format{LogFormat::logfmt};

// logfmt: bare when the value is a plain token, else quoted with \" and \\ escaped and
// control characters written as \n, \t or \u00XX (JSON string rules, which logfmt readers accept).
std::string logfmt_value(std::string_view v) {
  bool plain = !v.empty();
  for (char c : v)
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) >= 0x7f)
      plain = false;
  if (plain) return std::string(v);
  return nlohmann::json(std::string(v)).dump(-1, ' ', false,
                                              nlohmann::json::error_handler_t::replace);
}

}  // namespace

void init_logging(LogFormat format, const std::string& level) {
  g_format = format;
  spdlog::set_level(spdlog::level::from_str(level));
  if (format == LogFormat::json)
    spdlog::set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l",%v})",
                        spdlog::pattern_time_type::utc);
  else
    spdlog::set_pattern("ts=%Y-%m-%dT%H:%M:%S.%eZ level=%l %v", spdlog::pattern_time_type::utc);
}

std::string format_log_fields(LogFormat format, std::string_view message,
                              std::initializer_list<LogField> fields) {
  if (format == LogFormat::json) {
    auto quote = [](std::string_view s) {
      return nlohmann::json(std::string(s)).dump(-1, ' ', false,
                                                  nlohmann::json::error_handler_t::replace);
    };
    std::string out = "\"msg\":" + quote(message);
    for (const auto& f : fields) out += "," + quote(f.key) + ":" + quote(f.value);
    return out;
  }
  std::string out = "msg=" + logfmt_value(message);
  for (const auto& f : fields) out += " " + std::string(f.key) + "=" + logfmt_value(f.value);
  return out;
}

void log_event(spdlog::level::level_enum level, std::string_view message,
               std::initializer_list<LogField> fields) {
  if (!spdlog::should_log(level)) return;
  spdlog::log(level, "{}", format_log_fields(g_format.load(), message, fields));
}

}  // namespace lagwatch
