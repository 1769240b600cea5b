// Heartbeat SQL and values: what lagwatch writes and reads back (write mode) and what it reads
// from a pt-heartbeat table (read mode). An unreadable value is unknown (nullopt), never 0.
#include "heartbeat.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <string>

namespace lagwatch {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;

HeartbeatConfig read_mode() {
  HeartbeatConfig hb;
  hb.mode = HeartbeatConfig::Mode::read;
  hb.table = "percona.heartbeat";
  return hb;
}

HeartbeatConfig write_mode() {
  HeartbeatConfig hb;
  hb.mode = HeartbeatConfig::Mode::write;
  hb.table = "lagwatch.heartbeat";
  return hb;
}

// 2026-11-25 12:34:56 UTC plus `fraction`.
WallTime utc(nanoseconds fraction = 0ns) {
  return WallTime{sys_days{year{2026} / November / 25} + 12h + 34min + 56s} +
         duration_cast<WallTime::duration>(fraction);
}

// ---- read mode: pt-heartbeat's `ts` ---------------------------------------------------------

TEST(HeartbeatReadMode, ReadsTheNewestTsOfThePtHeartbeatTable) {
  EXPECT_EQ(heartbeat_read_sql("postgres", read_mode(), "orders"),
            "SELECT max(ts) FROM percona.heartbeat");
}

TEST(HeartbeatReadMode, MysqlNeverReadsTheReplicasOwnRow) {
  // A row the replica's own pt-heartbeat --update keeps fresh must not hide its lag; a primary
  // further up a chain still counts.
  EXPECT_EQ(heartbeat_read_sql("mysql", read_mode(), "orders"),
            "SELECT max(ts) FROM percona.heartbeat WHERE server_id <> @@server_id");
}

TEST(HeartbeatReadMode, AConfiguredSourceServerIdIsTheOnlyRowRead) {
  auto hb = read_mode();
  hb.source_server_id = 42;
  for (const char* engine : {"mysql", "postgres"})
    EXPECT_EQ(heartbeat_read_sql(engine, hb, "orders"),
              "SELECT max(ts) FROM percona.heartbeat WHERE server_id = 42");
}

TEST(HeartbeatReadMode, PtHeartbeatTsWithMicrosecondsIsExact) {
  // What pt-heartbeat --utc writes: UTC_TIMESTAMP(6) as 'YYYY-MM-DDTHH:MM:SS.ffffff'.
  EXPECT_EQ(parse_heartbeat(read_mode(), "2026-11-25T12:34:56.123456"), utc(123456us));
  EXPECT_EQ(parse_heartbeat(read_mode(), "2026-11-25T12:34:56.000001"), utc(1us));
  EXPECT_EQ(parse_heartbeat(read_mode(), "2026-11-25T12:34:56.999999"), utc(999999us));
}

TEST(HeartbeatReadMode, PtHeartbeatTsWithoutFractionIsWholeSeconds) {
  EXPECT_EQ(parse_heartbeat(read_mode(), "2026-11-25T12:34:56"), utc());
}

TEST(HeartbeatReadMode, ShorterAndLongerFractionsKeepTheirPlaceValue) {
  EXPECT_EQ(parse_heartbeat(read_mode(), "2026-11-25T12:34:56.5"), utc(500ms));
  EXPECT_EQ(parse_heartbeat(read_mode(), "2026-11-25T12:34:56.120"), utc(120ms));
  EXPECT_EQ(parse_heartbeat(read_mode(), "2026-11-25T12:34:56.123456789"), utc(123456789ns));
}

TEST(HeartbeatReadMode, SpaceSeparatorAsNowOrATimestampColumnPrintsIt) {
  EXPECT_EQ(parse_heartbeat(read_mode(), "2026-11-25 12:34:56.123456"), utc(123456us));
  EXPECT_EQ(parse_heartbeat(read_mode(), "2026-11-25 12:34:56"), utc());
}

TEST(HeartbeatReadMode, TsIsUtcWhateverTheExportersTimeZone) {
  const char* old = std::getenv("TZ");
  std::string saved = old ? old : "";
  setenv("TZ", "America/New_York", 1);
  tzset();
  auto at = parse_heartbeat(read_mode(), "2026-11-25T12:34:56.25");
  if (old)
    setenv("TZ", saved.c_str(), 1);
  else
    unsetenv("TZ");
  tzset();
  EXPECT_EQ(at, utc(250ms));
}

TEST(HeartbeatReadMode, CalendarEdgesAreRealDates) {
  EXPECT_EQ(parse_heartbeat(read_mode(), "2028-02-29T00:00:00"),
            WallTime{sys_days{year{2028} / February / 29}});
  EXPECT_EQ(parse_heartbeat(read_mode(), "2026-12-31T23:59:59.999999"),
            WallTime{sys_days{year{2027} / January / 1}} - 1us);
}

TEST(HeartbeatReadMode, JunkIsUnknownNotZero) {
  for (const char* junk : {
           "",
           "garbage",
           "0",
           "1795610096.123456",    // write mode's epoch seconds
           "2026-11-25",           // no time
           "2026-11-25T12:34",     // no seconds
           "2026-11-25X12:34:56",  // not T or space
           "2026/11/25T12:34:56",
           " 2026-11-25T12:34:56",  // leading space
           "+2026-11-25T12:34:56",
           "2026-11-25T12:34:56 ",            // trailing space
           "2026-11-25T12:34:56.",            // a point and no digits
           "2026-11-25T12:34:56.123abc",      // trailing junk
           "2026-11-25T12:34:56.1234567890",  // beyond nanoseconds
           "2026-11-25T12:34:nan",
           "2026-11-25T12:34:inf",
           "2026-11-25T12:34:5e1",
           "2026-1-25T12:34:56",  // fields are zero-padded
           "2026-11-25T2:34:56",
           "2026-13-01T00:00:00",  // month 13
           "2026-00-01T00:00:00",
           "2026-11-31T00:00:00",  // November has 30 days
           "2027-02-29T00:00:00",  // not a leap year
           "2026-11-25T24:00:00",
           "2026-11-25T12:60:00",
           "2026-11-25T12:34:60",
           "2026-11-25T12:34:-1",
       }) {
    auto at = parse_heartbeat(read_mode(), junk);
    EXPECT_FALSE(at.has_value()) << '"' << junk << "\" read as "
                                 << (at ? at->time_since_epoch().count() : 0);
  }
}

// ---- write mode: lagwatch's own epoch seconds -----------------------------------------------

TEST(HeartbeatWriteMode, ReadsLagwatchsOwnRowForTheCluster) {
  for (const char* engine : {"mysql", "postgres"})
    EXPECT_EQ(heartbeat_read_sql(engine, write_mode(), "orders"),
              "SELECT ts FROM lagwatch.heartbeat WHERE cluster = 'orders'");
}

TEST(HeartbeatWriteMode, WritesEpochSecondsWithMicrosecondsOnBothEngines) {
  auto at = utc(123456us);
  EXPECT_EQ(heartbeat_write_sql("postgres", write_mode(), "orders", at),
            "INSERT INTO lagwatch.heartbeat (cluster, ts) VALUES ('orders', 1795610096.123456) "
            "ON CONFLICT (cluster) DO UPDATE SET ts = EXCLUDED.ts");
  EXPECT_EQ(heartbeat_write_sql("mysql", write_mode(), "orders", at),
            "INSERT INTO lagwatch.heartbeat (cluster, ts) VALUES ('orders', 1795610096.123456) "
            "ON DUPLICATE KEY UPDATE ts = VALUES(ts)");
}

TEST(HeartbeatWriteMode, EpochSecondsReadBackToTheMicrosecond) {
  auto at = parse_heartbeat(write_mode(), "1795610096.123456");
  ASSERT_TRUE(at.has_value());
  EXPECT_LE(abs(*at - utc(123456us)), 1us);
  EXPECT_EQ(parse_heartbeat(write_mode(), "1795610096"), utc());
}

TEST(HeartbeatWriteMode, WhatIsWrittenIsWhatIsRead) {
  // The value the write statement carries, as the server prints a DOUBLE back.
  for (auto fraction : {0us, 1us, 250000us, 999999us}) {
    auto at = utc(fraction);
    auto sql = heartbeat_write_sql("mysql", write_mode(), "orders", at);
    auto start = sql.find("', ") + 3;
    auto value = sql.substr(start, sql.find(')', start) - start);
    auto back = parse_heartbeat(write_mode(), value);
    ASSERT_TRUE(back.has_value()) << value;
    EXPECT_LE(abs(*back - at), 1us) << value;
  }
}

TEST(HeartbeatWriteMode, ExponentFormAsADoubleMayBePrinted) {
  auto at = parse_heartbeat(write_mode(), "1.7956100961234560e9");
  ASSERT_TRUE(at.has_value());
  EXPECT_LE(abs(*at - utc(123456us)), 1us);
}

TEST(HeartbeatWriteMode, JunkIsUnknownNotZero) {
  for (const char* junk :
       {"", "abc", "1.5abc", "nan", "inf", "-inf", "-5", "0", "0.0", " 1795610096", "1795610096 ",
        "+1795610096", "0x1p30", "2026-11-25T12:34:56.123456"}) {
    auto at = parse_heartbeat(write_mode(), junk);
    EXPECT_FALSE(at.has_value()) << '"' << junk << "\" read as "
                                 << (at ? at->time_since_epoch().count() : 0);
  }
}

}  // namespace
}  // namespace lagwatch
