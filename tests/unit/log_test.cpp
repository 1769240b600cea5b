// Structured log lines: logfmt quoting and JSON escaping of messages and fields.
#include "log.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace lagwatch {
namespace {

TEST(Log, LogfmtQuotesOnlyWhatNeedsIt) {
  EXPECT_EQ(format_log_fields(LogFormat::logfmt, "collection failed",
                              {{"cluster", "orders"}, {"reason", "timeout"}, {"error", "no \"answer\""}}),
            R"(msg="collection failed" cluster=orders reason=timeout error="no \"answer\"")");
  EXPECT_EQ(format_log_fields(LogFormat::logfmt, "ok", {{"count", 3}, {"empty", ""}}),
            R"(msg=ok count=3 empty="")");
  EXPECT_EQ(format_log_fields(LogFormat::logfmt, "line\nbreak", {}), R"(msg="line\nbreak")");
}

TEST(Log, JsonFieldsParseBack) {
  std::string line = "{" + format_log_fields(LogFormat::json, "collection \"failed\"",
                                             {{"cluster", "orders"}, {"error", "a\tb"}}) + "}";
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["msg"], "collection \"failed\"");
  EXPECT_EQ(j["cluster"], "orders");
  EXPECT_EQ(j["error"], "a\tb");
}

}  // namespace
}  // namespace lagwatch
