// Structured logs: one line per event, logfmt by default or JSON (--log-format json), with
// the message and named fields. Never pass a secret as a field.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

namespace lagwatch {

enum class LogFormat { logfmt, json };

struct LogField {
  std::string_view key;
  std::string value;
  LogField(std::string_view k, std::string v) : key(k), value(std::move(v)) {}
  LogField(std::string_view k, const char* v) : key(k), value(v) {}
  LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
  template <typename Number, typename = std::enable_if_t<std::is_arithmetic_v<Number>>>
  LogField(std::string_view k, Number v) : key(k), value(std::to_string(v)) {}
};

// Sets the format and level of every later line ("debug", "info", "warn", "error").
void init_logging(LogFormat format, const std::string& level);

// The payload of one line (everything after ts and level), in the configured format.
std::string format_log_fields(LogFormat format, std::string_view message,
                              std::initializer_list<LogField> fields);

void log_event(spdlog::level::level_enum level, std::string_view message,
               std::initializer_list<LogField> fields = {});

inline void log_debug(std::string_view m, std::initializer_list<LogField> f = {}) {
  log_event(spdlog::level::debug, m, f);
}
inline void log_info(std::string_view m, std::initializer_list<LogField> f = {}) {
  log_event(spdlog::level::info, m, f);
}
inline void log_warn(std::string_view m, std::initializer_list<LogField> f = {}) {
  log_event(spdlog::level::warn, m, f);
}
inline void log_error(std::string_view m, std::initializer_list<LogField> f = {}) {
  log_event(spdlog::level::err, m, f);
}

}  // namespace lagwatch
