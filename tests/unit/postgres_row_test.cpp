// The PostgreSQL status row → sample conversion, on rows captured from real servers.
#include <gtest/gtest.h>

#include "postgres/postgres_collector.h"

namespace lagwatch {
namespace {

TEST(PostgresRow, PrimaryWithTwoStandbys) {
  PgStatusRow row;
  row.in_recovery = "f";
  row.current_lsn = "0/3000148";
  row.apply_delay_ms = "0";
  row.standbys_json =
      R"([{"application_name" : "pg2", "state" : "streaming", "sent_lsn" : "0/3000148", )"
      R"("write_lsn" : "0/3000148", "flush_lsn" : "0/3000148", "replay_lsn" : "0/3000060", )"
      R"("write_lag" : 0.000412, "flush_lag" : 0.000981, "replay_lag" : null}, )"
      R"({"application_name" : "pg3", "state" : "catchup", "sent_lsn" : null, "write_lsn" : null, )"
      R"("flush_lsn" : null, "replay_lsn" : null, "write_lag" : null, "flush_lag" : null, "replay_lag" : null}])";
  NodeSample s;
  fill_postgres_sample(row, s);
  EXPECT_EQ(s.role, Role::primary);
  EXPECT_TRUE(s.writable);
  EXPECT_EQ(s.current_position->offset, 0x3000148u);
  ASSERT_EQ(s.standbys.size(), 2u);
  EXPECT_EQ(s.standbys[0].application_name, "pg2");
  EXPECT_EQ(s.standbys[0].replay->offset, 0x3000060u);
  EXPECT_EQ(s.standbys[0].write_lag_seconds, 0.000412);
  EXPECT_FALSE(s.standbys[0].replay_lag_seconds);
  EXPECT_EQ(s.standbys[1].state, "catchup");
  EXPECT_FALSE(s.standbys[1].sent);
  EXPECT_TRUE(s.channels.empty());
}

TEST(PostgresRow, StreamingStandby) {
  PgStatusRow row;
  row.in_recovery = "t";
  row.replay_lsn = "0/3000060";
  row.receive_lsn = "0/3000148";
  row.reported_lag_seconds = "12.345678";
  row.replay_paused = "false";
  row.apply_delay_ms = "3000";
  row.receiver_status = "streaming";
  row.receiver_source = "127.0.0.1:5432";
  NodeSample s;
  fill_postgres_sample(row, s);
  EXPECT_EQ(s.role, Role::replica);
  EXPECT_FALSE(s.writable);
  ASSERT_EQ(s.channels.size(), 1u);
  const auto& c = s.channels[0];
  EXPECT_EQ(c.replayed->offset, 0x3000060u);
  EXPECT_EQ(c.received->offset, 0x3000148u);
  EXPECT_DOUBLE_EQ(*c.reported_lag_seconds, 12.345678);
  EXPECT_EQ(c.applying, true);
  EXPECT_EQ(c.apply_delay_seconds, 3.0);
  EXPECT_EQ(c.connected, true);
  EXPECT_EQ(c.source, "127.0.0.1:5432");
}

TEST(PostgresRow, StandbyWithStoppedReceiverAndPausedReplay) {
  PgStatusRow row;
  row.in_recovery = "t";
  row.replay_lsn = "0/3000060";
  row.replay_paused = "t";
  row.apply_delay_ms = "0";
  NodeSample s;
  fill_postgres_sample(row, s);
  const auto& c = s.channels.at(0);
  EXPECT_EQ(c.connected, false) << "no pg_stat_wal_receiver row: no receiver";
  EXPECT_EQ(c.applying, false);
  EXPECT_FALSE(c.reported_lag_seconds) << "NULL replay timestamp is unknown, not 0";
  EXPECT_FALSE(c.received);
}

TEST(PostgresRow, RoleWithoutPgReadAllStatsIsRefusedNotReadAsDisconnected) {
  // What a standby returns to a role without pg_monitor: its WAL receiver streams, but
  // pg_stat_wal_receiver shows such a role NULL for status and sender.
  PgStatusRow row;
  row.in_recovery = "t";
  row.replay_lsn = "0/3000060";
  row.receive_lsn = "0/3000148";
  row.replay_paused = "f";
  row.apply_delay_ms = "0";
  row.reads_all_stats = "f";
  row.monitoring_role = "lagwatch";
  NodeSample s;
  try {
    fill_postgres_sample(row, s);
    FAIL() << "a row the role may not fully see was accepted";
  } catch (const PgMissingPrivilege& e) {
    EXPECT_NE(std::string(e.what()).find("GRANT pg_monitor TO \"lagwatch\""), std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(s.channels.empty()) << "no made-up channel state";
  row.reads_all_stats = "t";
  row.receiver_status = "streaming";
  fill_postgres_sample(row, s);
  EXPECT_EQ(s.channels.at(0).connected, true);
}

TEST(PostgresRow, MalformedRowsAreErrorsNotZeros) {
  NodeSample s;
  PgStatusRow no_role;
  EXPECT_THROW(fill_postgres_sample(no_role, s), std::runtime_error);
  PgStatusRow bad_lsn;
  bad_lsn.in_recovery = "f";
  bad_lsn.current_lsn = "garbage";
  EXPECT_THROW(fill_postgres_sample(bad_lsn, s), std::runtime_error);
  PgStatusRow primary_without_position;
  primary_without_position.in_recovery = "f";
  EXPECT_THROW(fill_postgres_sample(primary_without_position, s), std::runtime_error);
}

TEST(PostgresConnectionString, AddsTimeoutsAndPasswordToUriAndKeywordForms) {
  auto uri = postgres_connection_string("postgresql://lagwatch@127.0.0.1:5433/postgres?sslmode=disable",
                                        "s3cr'et", std::chrono::milliseconds(800));
  EXPECT_NE(uri.find("host='127.0.0.1'"), std::string::npos) << uri;
  EXPECT_NE(uri.find("port='5433'"), std::string::npos) << uri;
  EXPECT_NE(uri.find("sslmode='disable'"), std::string::npos) << uri;
  EXPECT_NE(uri.find("connect_timeout=2"), std::string::npos) << uri;
  EXPECT_NE(uri.find("statement_timeout=800"), std::string::npos) << uri;
  EXPECT_NE(uri.find("password='s3cr\\'et'"), std::string::npos) << uri;
  auto kv = postgres_connection_string("host=127.0.0.1 port=5433 user=lagwatch", "", std::chrono::seconds(3));
  EXPECT_NE(kv.find("connect_timeout=3"), std::string::npos) << kv;
  EXPECT_EQ(kv.find("password"), std::string::npos) << kv;
  EXPECT_THROW(postgres_connection_string("host='unterminated", "", std::chrono::seconds(1)),
               std::runtime_error);
}

}  // namespace
}  // namespace lagwatch
