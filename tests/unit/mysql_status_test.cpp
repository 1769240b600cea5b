// The MySQL/MariaDB rows → sample conversions: replica status rows (captured from MariaDB 10.11,
// written from the MySQL manual's column lists), role, SHOW MASTER STATUS / SHOW BINARY LOG
// STATUS, SHOW BINARY LOGS and when it runs, error reasons.
#include <gtest/gtest.h>

#include <string_view>
#include <utility>
#include <vector>

#include "mysql/mysql_collector.h"
#include "units.h"

namespace lagwatch {
namespace {

// A row in the mysql client's vertical (\G) layout, one "Column: value" per line; NULL is NULL.
MysqlRow vertical(std::string_view text) {
  MysqlRow row;
  while (!text.empty()) {
    auto line = text.substr(0, text.find('\n'));
    text.remove_prefix(std::min(text.size(), line.size() + 1));
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    auto colon = line.find(':');
    if (line.empty() || colon == std::string_view::npos) continue;
    auto value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (value == "NULL")
      row.emplace(std::string(line.substr(0, colon)), std::nullopt);
    else
      row.emplace(std::string(line.substr(0, colon)), std::string(value));
  }
  return row;
}

MysqlRow with(MysqlRow row, const std::string& column, std::optional<std::string> value) {
  row[column] = std::move(value);
  return row;
}

// SHOW ALL REPLICAS STATUS on a MariaDB 10.11.19 replica (Debian 12), caught up, under writes.
constexpr std::string_view kMariadbCaughtUp = R"(
Connection_name:
Slave_SQL_State: Slave has read all relay log; waiting for more updates
Slave_IO_State: Waiting for master to send event
Master_Host: 127.0.0.1
Master_User: repl
Master_Port: 33711
Connect_Retry: 60
Master_Log_File: mysql-bin.000001
Read_Master_Log_Pos: 45087
Relay_Log_File: pid-relay-bin.000002
Relay_Log_Pos: 37498
Relay_Master_Log_File: mysql-bin.000001
Slave_IO_Running: Yes
Slave_SQL_Running: Yes
Replicate_Do_DB:
Replicate_Ignore_DB:
Replicate_Do_Table:
Replicate_Ignore_Table:
Replicate_Wild_Do_Table:
Replicate_Wild_Ignore_Table:
Last_Errno: 0
Last_Error:
Skip_Counter: 0
Exec_Master_Log_Pos: 45087
Relay_Log_Space: 37805
Until_Condition: None
Until_Log_File:
Until_Log_Pos: 0
Master_SSL_Allowed: No
Master_SSL_CA_File:
Master_SSL_CA_Path:
Master_SSL_Cert:
Master_SSL_Cipher:
Master_SSL_Key:
Seconds_Behind_Master: 0
Master_SSL_Verify_Server_Cert: No
Last_IO_Errno: 0
Last_IO_Error:
Last_SQL_Errno: 0
Last_SQL_Error:
Replicate_Ignore_Server_Ids:
Master_Server_Id: 1
Master_SSL_Crl:
Master_SSL_Crlpath:
Using_Gtid: Slave_Pos
Gtid_IO_Pos: 0-1-123
Replicate_Do_Domain_Ids:
Replicate_Ignore_Domain_Ids:
Parallel_Mode: optimistic
SQL_Delay: 0
SQL_Remaining_Delay: NULL
Slave_SQL_Running_State: Slave has read all relay log; waiting for more updates
Slave_DDL_Groups: 7
Slave_Non_Transactional_Groups: 0
Slave_Transactional_Groups: 116
Replicate_Rewrite_DB:
Retried_transactions: 0
Max_relay_log_size: 1073741824
Executed_log_entries: 485
Slave_received_heartbeats: 10
Slave_heartbeat_period: 30.000
Gtid_Slave_Pos: 0-1-123
)";

// The same replica after STOP SLAVE SQL_THREAD (captured; columns that did not change left out).
constexpr std::string_view kMariadbSqlStopped = R"(
Connection_name:
Slave_SQL_State:
Slave_IO_State: Waiting for master to send event
Master_Host: 127.0.0.1
Master_Port: 33711
Master_Log_File: mysql-bin.000001
Read_Master_Log_Pos: 30423
Relay_Master_Log_File: mysql-bin.000001
Slave_IO_Running: Yes
Slave_SQL_Running: No
Exec_Master_Log_Pos: 4855
Seconds_Behind_Master: NULL
Last_IO_Errno: 0
Last_IO_Error:
Last_SQL_Errno: 0
Last_SQL_Error:
SQL_Delay: 0
SQL_Remaining_Delay: NULL
Gtid_Slave_Pos: 0-1-16
)";

// After STOP SLAVE IO_THREAD (captured, abridged as above).
constexpr std::string_view kMariadbIoStopped = R"(
Connection_name:
Slave_SQL_State: Slave has read all relay log; waiting for more updates
Slave_IO_State:
Master_Host: 127.0.0.1
Master_Port: 33711
Master_Log_File: mysql-bin.000001
Read_Master_Log_Pos: 45463
Relay_Master_Log_File: mysql-bin.000001
Slave_IO_Running: No
Slave_SQL_Running: Yes
Exec_Master_Log_Pos: 45463
Seconds_Behind_Master: NULL
Last_IO_Errno: 0
Last_IO_Error:
Last_SQL_Errno: 0
Last_SQL_Error:
SQL_Delay: 0
Gtid_Slave_Pos: 0-1-124
)";

// The replication user's password changed on the primary: the IO thread keeps retrying
// (captured, abridged).
constexpr std::string_view kMariadbIoConnecting = R"(
Connection_name:
Slave_IO_State: Connecting to master
Master_Host: 127.0.0.1
Master_Port: 33711
Master_Log_File: mysql-bin.000001
Read_Master_Log_Pos: 45463
Relay_Master_Log_File: mysql-bin.000001
Slave_IO_Running: Connecting
Slave_SQL_Running: Yes
Exec_Master_Log_Pos: 45463
Seconds_Behind_Master: NULL
Last_IO_Errno: 1045
Last_IO_Error: error connecting to master 'repl@127.0.0.1:33711' - retry-time: 1  maximum-retries: 100000  message: Access denied for user 'repl'@'127.0.0.1' (using password: YES)
Last_SQL_Errno: 0
Last_SQL_Error:
SQL_Delay: 0
Gtid_Slave_Pos: 0-1-124
)";

// A multi-source MariaDB replica: the default connection from the cluster's primary and
// connection "other" with MASTER_DELAY=3 from elsewhere (captured, abridged).
constexpr std::string_view kMariadbMultiDefault = R"(
Connection_name:
Master_Host: 127.0.0.1
Master_Port: 33711
Master_Log_File: mysql-bin.000004
Read_Master_Log_Pos: 117077996
Relay_Master_Log_File: mysql-bin.000004
Slave_IO_Running: Yes
Slave_SQL_Running: Yes
Exec_Master_Log_Pos: 117077996
Seconds_Behind_Master: 0
Last_IO_Errno: 0
Last_IO_Error:
Last_SQL_Errno: 0
Last_SQL_Error:
Master_Server_Id: 1
Using_Gtid: Slave_Pos
SQL_Delay: 0
Gtid_Slave_Pos: 0-1-492,3-3-2
)";
constexpr std::string_view kMariadbMultiOther = R"(
Connection_name: other
Master_Host: 127.0.0.1
Master_Port: 33713
Master_Log_File: mysql-bin.000002
Read_Master_Log_Pos: 1272
Relay_Master_Log_File: mysql-bin.000002
Slave_IO_Running: Yes
Slave_SQL_Running: Yes
Exec_Master_Log_Pos: 1272
Seconds_Behind_Master: 0
Last_IO_Errno: 0
Last_IO_Error:
Last_SQL_Errno: 0
Last_SQL_Error:
Master_Server_Id: 3
Using_Gtid: No
SQL_Delay: 3
SQL_Remaining_Delay: NULL
Gtid_Slave_Pos: 0-1-492,3-3-2
)";

// MySQL >= 8.0.22 SHOW REPLICA STATUS, every column of the reference manual, lagging a file
// behind with the applier 12 s behind.
constexpr std::string_view kMysql8Replica = R"(
Replica_IO_State: Waiting for source to send event
Source_Host: 10.0.0.1
Source_User: repl
Source_Port: 3306
Connect_Retry: 60
Source_Log_File: binlog.000012
Read_Source_Log_Pos: 4822
Relay_Log_File: replica-relay-bin.000031
Relay_Log_Pos: 1048901
Relay_Source_Log_File: binlog.000011
Replica_IO_Running: Yes
Replica_SQL_Running: Yes
Replicate_Do_DB:
Replicate_Ignore_DB:
Replicate_Do_Table:
Replicate_Ignore_Table:
Replicate_Wild_Do_Table:
Replicate_Wild_Ignore_Table:
Last_Errno: 0
Last_Error:
Skip_Counter: 0
Exec_Source_Log_Pos: 1048576
Relay_Log_Space: 1054321
Until_Condition: None
Until_Log_File:
Until_Log_Pos: 0
Source_SSL_Allowed: No
Source_SSL_CA_File:
Source_SSL_CA_Path:
Source_SSL_Cert:
Source_SSL_Cipher:
Source_SSL_Key:
Seconds_Behind_Source: 12
Source_SSL_Verify_Server_Cert: No
Last_IO_Errno: 0
Last_IO_Error:
Last_SQL_Errno: 0
Last_SQL_Error:
Replicate_Ignore_Server_Ids:
Source_Server_Id: 1
Source_UUID: 3e11fa47-71ca-11e1-9e33-c80aa9429562
Source_Info_File: mysql.slave_master_info
SQL_Delay: 0
SQL_Remaining_Delay: NULL
Replica_SQL_Running_State: Waiting for dependent transaction to commit
Source_Retry_Count: 86400
Source_Bind:
Last_IO_Error_Timestamp:
Last_SQL_Error_Timestamp:
Source_SSL_Crl:
Source_SSL_Crlpath:
Retrieved_Gtid_Set: 3e11fa47-71ca-11e1-9e33-c80aa9429562:1-4512
Executed_Gtid_Set: 3e11fa47-71ca-11e1-9e33-c80aa9429562:1-4490
Auto_Position: 1
Replicate_Rewrite_DB:
Channel_Name:
Source_TLS_Version:
Source_public_key_path:
Get_Source_public_key: 0
Network_Namespace:
)";

// MySQL 5.7 / 8.0 before 8.0.22: SHOW SLAVE STATUS with the Master/Slave names, every column of
// the 5.7 manual, a named channel whose SQL thread stopped on an error.
constexpr std::string_view kMysql57Slave = R"(
Slave_IO_State: Waiting for master to send event
Master_Host: db-a.internal
Master_User: repl
Master_Port: 3306
Connect_Retry: 60
Master_Log_File: mysql-bin.000007
Read_Master_Log_Pos: 91044
Relay_Log_File: db-b-relay-bin-orders.000004
Relay_Log_Pos: 2210
Relay_Master_Log_File: mysql-bin.000007
Slave_IO_Running: Yes
Slave_SQL_Running: No
Replicate_Do_DB:
Replicate_Ignore_DB:
Replicate_Do_Table:
Replicate_Ignore_Table:
Replicate_Wild_Do_Table:
Replicate_Wild_Ignore_Table:
Last_Errno: 1062
Last_Error: Could not execute Write_rows event on table shop.orders; Duplicate entry '17' for key 'PRIMARY'
Skip_Counter: 0
Exec_Master_Log_Pos: 2004
Relay_Log_Space: 89672
Until_Condition: None
Until_Log_File:
Until_Log_Pos: 0
Master_SSL_Allowed: No
Master_SSL_CA_File:
Master_SSL_CA_Path:
Master_SSL_Cert:
Master_SSL_Cipher:
Master_SSL_Key:
Seconds_Behind_Master: NULL
Master_SSL_Verify_Server_Cert: No
Last_IO_Errno: 0
Last_IO_Error:
Last_SQL_Errno: 1062
Last_SQL_Error: Could not execute Write_rows event on table shop.orders; Duplicate entry '17' for key 'PRIMARY'
Replicate_Ignore_Server_Ids:
Master_Server_Id: 1
Master_UUID: 3e11fa47-71ca-11e1-9e33-c80aa9429562
Master_Info_File: mysql.slave_master_info
SQL_Delay: 0
SQL_Remaining_Delay: NULL
Slave_SQL_Running_State:
Master_Retry_Count: 86400
Master_Bind:
Last_IO_Error_Timestamp:
Last_SQL_Error_Timestamp: 240611 10:12:01
Master_SSL_Crl:
Master_SSL_Crlpath:
Retrieved_Gtid_Set:
Executed_Gtid_Set:
Auto_Position: 0
Replicate_Rewrite_DB:
Channel_Name: orders
Master_TLS_Version:
)";

TEST(MysqlStatus, MariadbCaughtUpReplica) {
  auto c = parse_replica_status(vertical(kMariadbCaughtUp));
  EXPECT_EQ(c.name, "");
  EXPECT_EQ(c.source, "127.0.0.1:33711");
  EXPECT_EQ(c.connected, true);
  EXPECT_EQ(c.applying, true);
  ASSERT_TRUE(c.replayed);
  EXPECT_EQ(c.replayed->segment, 1u);
  EXPECT_EQ(c.replayed->offset, 45087u);
  EXPECT_EQ(c.replayed->text, "mysql-bin.000001:45087");
  ASSERT_TRUE(c.received);
  EXPECT_EQ(*c.received, *c.replayed);
  EXPECT_EQ(c.reported_lag_seconds, 0.0) << "0 reported is 0, not absent";
  EXPECT_EQ(c.apply_delay_seconds, 0.0);
  EXPECT_EQ(c.last_io_errno, 0);
  EXPECT_EQ(c.last_sql_errno, 0);
  EXPECT_EQ(c.last_error, "");
  EXPECT_EQ(c.gtid_position, "0-1-123");
}

TEST(MysqlStatus, StoppedSqlThreadIsNotApplyingAndHasNoReportedLag) {
  auto c = parse_replica_status(vertical(kMariadbSqlStopped));
  EXPECT_EQ(c.applying, false);
  EXPECT_EQ(c.connected, true);
  EXPECT_FALSE(c.reported_lag_seconds) << "Seconds_Behind_Master NULL is unknown, never 0";
  EXPECT_EQ(c.replayed->offset, 4855u);
  EXPECT_EQ(c.received->offset, 30423u) << "the IO thread kept receiving";
}

TEST(MysqlStatus, StoppedIoThreadIsNotConnected) {
  auto c = parse_replica_status(vertical(kMariadbIoStopped));
  EXPECT_EQ(c.connected, false);
  EXPECT_EQ(c.applying, true);
  EXPECT_FALSE(c.reported_lag_seconds);
  EXPECT_EQ(c.replayed->offset, 45463u) << "positions are still known";
}

TEST(MysqlStatus, ConnectingIoThreadIsNotConnectedAndSaysWhy) {
  auto c = parse_replica_status(vertical(kMariadbIoConnecting));
  EXPECT_EQ(c.connected, false) << "\"Connecting\" receives nothing";
  EXPECT_EQ(c.last_io_errno, 1045);
  EXPECT_EQ(c.last_error.rfind("IO thread: error connecting to master 'repl@127.0.0.1:33711'", 0),
            0u)
      << c.last_error;
}

TEST(MysqlStatus, MariadbMultiSourcePair) {
  auto main = parse_replica_status(vertical(kMariadbMultiDefault));
  auto other = parse_replica_status(vertical(kMariadbMultiOther));
  EXPECT_EQ(main.name, "");
  EXPECT_EQ(other.name, "other");
  EXPECT_EQ(main.source, "127.0.0.1:33711");
  EXPECT_EQ(other.source, "127.0.0.1:33713");
  EXPECT_EQ(main.replayed->segment, 4u);
  EXPECT_EQ(main.replayed->offset, 117077996u);
  EXPECT_EQ(other.replayed->text, "mysql-bin.000002:1272");
  EXPECT_EQ(other.apply_delay_seconds, 3.0);
  EXPECT_EQ(main.gtid_position, "0-1-492,3-3-2");
}

TEST(MysqlStatus, Mysql8SourceReplicaNames) {
  auto c = parse_replica_status(vertical(kMysql8Replica));
  EXPECT_EQ(c.name, "");
  EXPECT_EQ(c.source, "10.0.0.1:3306");
  EXPECT_EQ(c.connected, true);
  EXPECT_EQ(c.applying, true);
  EXPECT_EQ(c.replayed->segment, 11u);
  EXPECT_EQ(c.replayed->offset, 1048576u);
  EXPECT_EQ(c.received->segment, 12u);
  EXPECT_EQ(c.received->offset, 4822u);
  EXPECT_EQ(c.reported_lag_seconds, 12.0);
  EXPECT_EQ(c.gtid_position, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-4490");
}

TEST(MysqlStatus, MysqlExecutedGtidSetIsJoinedOnOneLine) {
  auto row = with(vertical(kMysql8Replica), "Executed_Gtid_Set",
                  "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-4490,\n"
                  "8d2a1b6e-1f4c-11ee-8f0a-0242ac120002:1-3");
  EXPECT_EQ(parse_replica_status(row).gtid_position,
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-4490,8d2a1b6e-1f4c-11ee-8f0a-0242ac120002:1-3");
}

TEST(MysqlStatus, Mysql57MasterSlaveNamesWithNamedChannel) {
  auto c = parse_replica_status(vertical(kMysql57Slave));
  EXPECT_EQ(c.name, "orders");
  EXPECT_EQ(c.source, "db-a.internal:3306");
  EXPECT_EQ(c.connected, true);
  EXPECT_EQ(c.applying, false);
  EXPECT_FALSE(c.reported_lag_seconds);
  EXPECT_EQ(c.replayed->text, "mysql-bin.000007:2004");
  EXPECT_EQ(c.received->text, "mysql-bin.000007:91044");
  EXPECT_EQ(c.last_sql_errno, 1062);
  EXPECT_EQ(c.last_error,
            "SQL thread: Could not execute Write_rows event on table shop.orders; Duplicate entry "
            "'17' for key 'PRIMARY'");
  EXPECT_EQ(c.gtid_position, "");
}

TEST(MysqlStatus, BothThreadErrorsAreKept) {
  auto row = with(vertical(kMysql57Slave), "Last_IO_Error", "error reconnecting to master");
  row = with(row, "Last_IO_Errno", "2003");
  auto c = parse_replica_status(row);
  EXPECT_EQ(c.last_io_errno, 2003);
  EXPECT_EQ(c.last_error.rfind("IO thread: error reconnecting to master; SQL thread: Could not", 0),
            0u)
      << c.last_error;
}

TEST(MysqlStatus, GarbageInANumberIsAnErrorNotZero) {
  for (const char* column : {"Exec_Master_Log_Pos", "Read_Master_Log_Pos", "Seconds_Behind_Master",
                             "Master_Port", "SQL_Delay", "Last_IO_Errno"}) {
    for (const char* garbage : {"12a4", "", "-", " 7", "99999999999999999999999"}) {
      auto row = with(vertical(kMariadbCaughtUp), column, garbage);
      try {
        (void)parse_replica_status(row);
        ADD_FAILURE() << column << "=\"" << garbage << "\" was accepted";
      } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(column), std::string::npos) << e.what();
      }
    }
  }
  auto row = with(vertical(kMysql8Replica), "Exec_Source_Log_Pos", "x");
  EXPECT_THROW(parse_replica_status(row), std::runtime_error) << "the new names are checked too";
}

TEST(MysqlStatus, RowWithoutThreadStatesIsAnError) {
  auto row = vertical(kMariadbCaughtUp);
  row.erase("Slave_SQL_Running");
  EXPECT_THROW(parse_replica_status(row), std::runtime_error);
}

TEST(MysqlStatus, ChannelThatNeverConnectedHasNoPositions) {
  // CHANGE MASTER done, START SLAVE never: empty file names, position 4.
  auto row = with(vertical(kMariadbIoStopped), "Master_Log_File", "");
  row = with(row, "Read_Master_Log_Pos", "4");
  row = with(row, "Relay_Master_Log_File", "");
  row = with(row, "Exec_Master_Log_Pos", "0");
  auto c = parse_replica_status(row);
  EXPECT_FALSE(c.replayed);
  EXPECT_FALSE(c.received);
}

TEST(MysqlStatus, Ipv6SourceIsBracketed) {
  auto row = with(vertical(kMysql8Replica), "Source_Host", "fd00::1");
  EXPECT_EQ(parse_replica_status(row).source, "[fd00::1]:3306");
}

// ---- Role ----------------------------------------------------------------------------------

ReplicationChannel channel(bool connected, bool applying) {
  ReplicationChannel c;
  c.connected = connected;
  c.applying = applying;
  return c;
}

TEST(MysqlRole, NodeWithoutChannelsIsPrimary) {
  auto r = mysql_role({}, false, false);
  EXPECT_EQ(r.role, Role::primary);
  EXPECT_TRUE(r.writable);
  EXPECT_FALSE(mysql_role({}, true, false).writable);
  EXPECT_FALSE(mysql_role({}, false, true).writable) << "super_read_only";
  EXPECT_EQ(mysql_role({}, true, true).role, Role::primary);
}

TEST(MysqlRole, NodeWithAChannelIsReplica) {
  for (auto c : {channel(true, true), channel(false, true), channel(true, false)}) {
    auto r = mysql_role({c}, true, false);
    EXPECT_EQ(r.role, Role::replica);
    EXPECT_FALSE(r.writable);
  }
  // Many replicas are left writable; they stay replicas while they replicate.
  auto r = mysql_role({channel(true, true)}, false, false);
  EXPECT_EQ(r.role, Role::replica);
  EXPECT_TRUE(r.writable);
  EXPECT_FALSE(mysql_role({channel(true, true)}, false, true).writable);
}

TEST(MysqlRole, WritableNodeWithAllChannelsStoppedIsAPrimary) {
  // STOP REPLICA + read_only=0 without RESET REPLICA ALL: a promoted replica, a split-brain risk.
  auto r = mysql_role({channel(false, false), channel(false, false)}, false, false);
  EXPECT_EQ(r.role, Role::primary);
  EXPECT_TRUE(r.writable);
}

TEST(MysqlRole, ReadOnlyNodeWithAllChannelsStoppedStaysReplica) {
  auto r = mysql_role({channel(false, false)}, true, false);
  EXPECT_EQ(r.role, Role::replica);
  EXPECT_FALSE(r.writable);
  EXPECT_EQ(mysql_role({channel(false, false)}, false, true).role, Role::replica)
      << "super_read_only also means not promoted";
}

TEST(MysqlRole, OneRunningChannelKeepsAReplica) {
  auto r = mysql_role({channel(false, false), channel(true, true)}, false, false);
  EXPECT_EQ(r.role, Role::replica);
  EXPECT_EQ(mysql_role({channel(false, false), channel(false, true)}, false, false).role,
            Role::replica);
}

TEST(MysqlRole, ChannelsFromCapturedRows) {
  std::vector<ReplicationChannel> stopped{parse_replica_status(vertical(kMariadbSqlStopped))};
  EXPECT_EQ(mysql_role(stopped, false, false).role, Role::replica) << "the IO thread still runs";
  auto both = with(vertical(kMariadbSqlStopped), "Slave_IO_Running", "No");
  EXPECT_EQ(mysql_role({parse_replica_status(both)}, false, false).role, Role::primary);
}

// ---- SHOW BINARY LOGS ----------------------------------------------------------------------

MysqlRow binlog(const char* name, const char* size, const char* encrypted = nullptr) {
  MysqlRow row{{"Log_name", name}, {"File_size", size}};
  if (encrypted) row["Encrypted"] = encrypted;
  return row;
}

TEST(MysqlBinaryLogs, NewestFileIsTheCurrentPosition) {
  // Captured on MariaDB 10.11 after two FLUSH BINARY LOGS.
  auto logs =
      parse_binary_logs({binlog("mysql-bin.000001", "103406"), binlog("mysql-bin.000002", "3440"),
                         binlog("mysql-bin.000003", "3769")});
  ASSERT_EQ(logs.segments.size(), 3u);
  EXPECT_EQ(logs.segments[1].number, 2u);
  EXPECT_EQ(logs.segments[1].size, 3440u);
  ASSERT_TRUE(logs.current_position);
  EXPECT_EQ(logs.current_position->segment, 3u);
  EXPECT_EQ(logs.current_position->offset, 3769u);
  EXPECT_EQ(logs.current_position->text, "mysql-bin.000003:3769");
  // The replica had executed up to mysql-bin.000001:100351 at that moment; the distance
  // matched (103406 - 100351) + 3440 + 3769 computed by hand.
  auto replica = mysql_binlog_position("mysql-bin.000001", 100351);
  EXPECT_EQ(bytes_between(*replica, *logs.current_position, logs.segments), 10264u);
}

TEST(MysqlBinaryLogs, NewestIsTheHighestNumberNotTheLastRow) {
  auto logs = parse_binary_logs({binlog("binlog.000010", "500"), binlog("binlog.000009", "900")});
  EXPECT_EQ(logs.current_position->segment, 10u);
  EXPECT_EQ(logs.current_position->offset, 500u);
}

TEST(MysqlBinaryLogs, UnparsableNamesAreSkipped) {
  auto logs = parse_binary_logs(
      {binlog("binlog", "10"), binlog("binlog.index", "20"), binlog("binlog.000002", "300")});
  ASSERT_EQ(logs.segments.size(), 1u);
  EXPECT_EQ(logs.current_position->offset, 300u);
  EXPECT_FALSE(parse_binary_logs({}).current_position) << "no binlogs, no position";
}

TEST(MysqlBinaryLogs, GarbageSizeIsAnError) {
  EXPECT_THROW(parse_binary_logs({binlog("binlog.000002", "3x")}), std::runtime_error);
}

TEST(MysqlBinaryLogs, EncryptedFilesAreMeasuredWithoutTheirHeader) {
  // MySQL 8.0.14+: File_size counts the 512-byte encryption header; positions do not.
  auto logs = parse_binary_logs({binlog("binlog.000001", "1512", "Yes"),
                                 binlog("binlog.000002", "1024", "Yes"),
                                 binlog("binlog.000003", "700", "No")});
  EXPECT_EQ(logs.segments[0].size, 1000u);
  EXPECT_EQ(logs.segments[1].size, 512u);
  EXPECT_EQ(logs.segments[2].size, 700u);
  auto active = parse_binary_logs({binlog("binlog.000004", "2560", "Yes")});
  EXPECT_EQ(active.current_position->offset, 2048u);
}

// ---- SHOW MASTER STATUS / SHOW BINARY LOG STATUS ------------------------------------------

// SHOW MASTER STATUS\G on MariaDB 10.11.19 (Debian 12) after two FLUSH BINARY LOGS; SHOW BINLOG
// STATUS\G printed the same row.
constexpr std::string_view kMariadbMasterStatus = R"(
            File: mysql-bin.000003
        Position: 555
    Binlog_Do_DB:
Binlog_Ignore_DB:
)";

// SHOW BINARY LOG STATUS\G on MySQL 8.4, as its manual prints it (SHOW MASTER STATUS on 8.0
// has the same columns).
constexpr std::string_view kMysqlBinaryLogStatus = R"(
             File: source-bin.000002
         Position: 1307
     Binlog_Do_DB: test
 Binlog_Ignore_DB: manual, mysql
Executed_Gtid_Set: 3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5
)";

TEST(MysqlBinlogStatus, MariadbRowIsTheCurrentPosition) {
  auto position = parse_binlog_status({vertical(kMariadbMasterStatus)});
  ASSERT_TRUE(position);
  EXPECT_EQ(position->segment, 3u);
  EXPECT_EQ(position->offset, 555u);
  EXPECT_EQ(position->text, "mysql-bin.000003:555");
}

TEST(MysqlBinlogStatus, MysqlRowWithGtidsIsTheCurrentPosition) {
  auto position = parse_binlog_status({vertical(kMysqlBinaryLogStatus)});
  ASSERT_TRUE(position);
  EXPECT_EQ(position->segment, 2u);
  EXPECT_EQ(position->offset, 1307u);
  EXPECT_EQ(position->text, "source-bin.000002:1307");
}

TEST(MysqlBinlogStatus, NoRowMeansBinaryLoggingIsOff) { EXPECT_FALSE(parse_binlog_status({})); }

TEST(MysqlBinlogStatus, AnUnreadableRowIsAnErrorNotAPosition) {
  auto row = vertical(kMariadbMasterStatus);
  EXPECT_THROW(parse_binlog_status({with(row, "Position", "55x")}), std::runtime_error);
  EXPECT_THROW(parse_binlog_status({with(row, "Position", std::nullopt)}), std::runtime_error);
  EXPECT_THROW(parse_binlog_status({with(row, "File", std::nullopt)}), std::runtime_error);
  EXPECT_THROW(parse_binlog_status({with(row, "File", "mysql-bin")}), std::runtime_error)
      << "no numeric extension: the position could not be ordered";
  row.erase("Position");
  EXPECT_THROW(parse_binlog_status({row}), std::runtime_error);
}

TEST(MysqlVersion, BinlogStatusStatement) {
  EXPECT_STREQ(mysql_binlog_status_statement("10.11.19-MariaDB-0+deb12u1-log"),
               "SHOW MASTER STATUS")
      << "MariaDB has no SHOW BINARY LOG STATUS (a syntax error on 10.11)";
  EXPECT_STREQ(mysql_binlog_status_statement("5.5.5-10.4.32-MariaDB"), "SHOW MASTER STATUS");
  EXPECT_STREQ(mysql_binlog_status_statement("11.8.2-MariaDB"), "SHOW MASTER STATUS");
  EXPECT_STREQ(mysql_binlog_status_statement("5.7.44-log"), "SHOW MASTER STATUS");
  EXPECT_STREQ(mysql_binlog_status_statement("8.0.36"), "SHOW MASTER STATUS");
  EXPECT_STREQ(mysql_binlog_status_statement("8.1.0"), "SHOW MASTER STATUS");
  EXPECT_STREQ(mysql_binlog_status_statement("8.2.0"), "SHOW BINARY LOG STATUS")
      << "added in 8.2.0, where SHOW MASTER STATUS is deprecated";
  EXPECT_STREQ(mysql_binlog_status_statement("8.4.0-commercial"), "SHOW BINARY LOG STATUS")
      << "8.4 removed SHOW MASTER STATUS";
  EXPECT_STREQ(mysql_binlog_status_statement("9.1.0"), "SHOW BINARY LOG STATUS");
  EXPECT_STREQ(mysql_binlog_status_statement("weird"), "SHOW MASTER STATUS")
      << "unknown: the spelling every server but MySQL 8.4+ knows, with the fallback on a "
         "syntax error";
}

// ---- When SHOW BINARY LOGS runs --------------------------------------------------------------

using Segments = std::vector<std::pair<std::uint64_t, std::uint64_t>>;

Segments numbers_and_sizes(const std::vector<Segment>& segments) {
  Segments out;
  for (const auto& s : segments) out.emplace_back(s.number, s.size);
  return out;
}

// One primary's binlog as a test drives it: the files' sizes, the newest is the current file.
struct FakeBinlog {
  std::string base = "mysql-bin";
  std::vector<std::pair<std::uint64_t, std::uint64_t>> files{{1, 103406}, {2, 3440}, {3, 3769}};

  std::string name(std::uint64_t n) const {
    auto digits = std::to_string(n);
    return base + "." + std::string(6 - digits.size(), '0') + digits;
  }
  Position current() const {
    return *mysql_binlog_position(name(files.back().first), files.back().second);
  }
  std::vector<MysqlRow> show_binary_logs() const {
    std::vector<MysqlRow> rows;
    for (auto [n, size] : files)
      rows.push_back(binlog(name(n).c_str(), std::to_string(size).c_str()));
    return rows;
  }
  void write(std::uint64_t bytes) { files.back().second += bytes; }
  void rotate() { files.emplace_back(files.back().first + 1, 256); }
};

// What the collector does with the list in one cycle; counts the SHOW BINARY LOGS it ran.
struct ListingCycle {
  MysqlBinaryLogList list;
  int listings = 0;

  std::vector<Segment> run(const FakeBinlog& server, WallTime now) {
    auto current = server.current();
    if (list.needs_listing(current, now)) {
      list.update(server.show_binary_logs(), current, now);
      ++listings;
    }
    return list.segments(current);
  }
};

const WallTime kStart{std::chrono::seconds(1'800'000'000)};

TEST(MysqlBinaryLogList, ListsOnceThenOnlyAfterARotation) {
  FakeBinlog server;
  ListingCycle cycle;
  auto now = kStart;
  for (int i = 0; i < 30; ++i, now += std::chrono::seconds(1)) {
    server.write(250);
    cycle.run(server, now);
  }
  EXPECT_EQ(cycle.listings, 1) << "30 cycles without a rotation: the first lists";
  server.rotate();
  cycle.run(server, now);
  EXPECT_EQ(cycle.listings, 2) << "a new current file: listed again";
  for (int i = 0; i < 10; ++i, now += std::chrono::seconds(1)) {
    server.write(100);
    cycle.run(server, now);
  }
  EXPECT_EQ(cycle.listings, 2);
}

TEST(MysqlBinaryLogList, SegmentsAreWhatAListingEveryCycleWouldGive) {
  // Every cycle, whether or not it listed, hands on what SHOW BINARY LOGS would have listed in
  // that cycle (the current file's size being the position), so lag_bytes is unchanged.
  FakeBinlog server;
  ListingCycle cycle;
  auto now = kStart;
  auto replica = *mysql_binlog_position("mysql-bin.000001", 100351);
  for (int i = 0; i < 40; ++i, now += std::chrono::milliseconds(500)) {
    if (i % 7 == 3) server.rotate();
    server.write(50 * static_cast<std::uint64_t>(i));
    auto segments = cycle.run(server, now);
    auto every_cycle = parse_binary_logs(server.show_binary_logs());
    ASSERT_EQ(numbers_and_sizes(segments), numbers_and_sizes(every_cycle.segments))
        << "cycle " << i;
    EXPECT_EQ(bytes_between(replica, server.current(), segments),
              bytes_between(replica, *every_cycle.current_position, every_cycle.segments))
        << "cycle " << i;
  }
  EXPECT_EQ(cycle.listings, 1 + 6) << "the first cycle and each of the 6 rotations";
}

TEST(MysqlBinaryLogList, LagAcrossFilesFromCapturedRows) {
  // MariaDB 10.11 after two FLUSH BINARY LOGS: SHOW BINARY LOGS listed 103406, 3440 and 3769
  // bytes and SHOW MASTER STATUS said mysql-bin.000003:3769; the replica had executed up to
  // mysql-bin.000001:100351. Then 1000 more bytes went into mysql-bin.000003.
  MysqlBinaryLogList list;
  auto current = *mysql_binlog_position("mysql-bin.000003", 3769);
  ASSERT_TRUE(list.needs_listing(current, kStart));
  list.update({binlog("mysql-bin.000001", "103406"), binlog("mysql-bin.000002", "3440"),
               binlog("mysql-bin.000003", "3769")},
              current, kStart);
  auto replica = *mysql_binlog_position("mysql-bin.000001", 100351);
  EXPECT_EQ(bytes_between(replica, current, list.segments(current)), 10264u)
      << "(103406 - 100351) + 3440 + 3769, computed by hand";
  auto later = *mysql_binlog_position("mysql-bin.000003", 4769);
  EXPECT_FALSE(list.needs_listing(later, kStart + std::chrono::seconds(1)));
  EXPECT_EQ(numbers_and_sizes(list.segments(later)), (Segments{{1, 103406}, {2, 3440}, {3, 4769}}));
  EXPECT_EQ(bytes_between(replica, later, list.segments(later)), 11264u);
}

TEST(MysqlBinaryLogList, ARotationBetweenStatusAndListingIsLeftForTheNextCycle) {
  // SHOW MASTER STATUS said mysql-bin.000003:3769, then the server rotated before SHOW BINARY
  // LOGS: the list has 000003 closed at 3800 and a new 000004.
  MysqlBinaryLogList list;
  auto current = *mysql_binlog_position("mysql-bin.000003", 3769);
  list.update({binlog("mysql-bin.000002", "3440"), binlog("mysql-bin.000003", "3800"),
               binlog("mysql-bin.000004", "256")},
              current, kStart);
  EXPECT_EQ(numbers_and_sizes(list.segments(current)), (Segments{{2, 3440}, {3, 3769}}))
      << "as a listing taken with the position would have been";
  auto next = *mysql_binlog_position("mysql-bin.000004", 300);
  EXPECT_TRUE(list.needs_listing(next, kStart + std::chrono::seconds(1)))
      << "000004 was not the current file at the listing";
}

TEST(MysqlBinaryLogList, ReadAgainAfterAMinuteForPurgesByHand) {
  MysqlBinaryLogList list;
  auto current = *mysql_binlog_position("mysql-bin.000003", 3769);
  list.update({binlog("mysql-bin.000002", "3440"), binlog("mysql-bin.000003", "3769")}, current,
              kStart);
  EXPECT_FALSE(list.needs_listing(
      current, kStart + MysqlBinaryLogList::kMaxAge - std::chrono::milliseconds(1)));
  EXPECT_TRUE(list.needs_listing(current, kStart + MysqlBinaryLogList::kMaxAge));
  EXPECT_TRUE(list.needs_listing(current, kStart - std::chrono::seconds(1)))
      << "the wall clock stepped back: the list's age is unknown";
  // PURGE BINARY LOGS TO 'mysql-bin.000003': the next listing drops 000002, as a listing every
  // cycle would have; a replica still executing 000002 has unknown lag_bytes again.
  list.update({binlog("mysql-bin.000003", "3769")}, current, kStart + MysqlBinaryLogList::kMaxAge);
  EXPECT_EQ(numbers_and_sizes(list.segments(current)), (Segments{{3, 3769}}));
  EXPECT_FALSE(bytes_between(*mysql_binlog_position("mysql-bin.000002", 100), current,
                             list.segments(current)));
}

TEST(MysqlBinaryLogList, ClearedListIsReadAgain) {
  // The collector clears it on a new connection, on a demotion and when binary logging is off.
  MysqlBinaryLogList list;
  auto current = *mysql_binlog_position("mysql-bin.000003", 3769);
  list.update({binlog("mysql-bin.000003", "3769")}, current, kStart);
  EXPECT_FALSE(list.needs_listing(current, kStart));
  list.clear();
  EXPECT_TRUE(list.needs_listing(current, kStart));
}

TEST(MysqlBinaryLogList, ResetMasterStartsANewList) {
  // RESET MASTER (RESET BINARY LOGS AND GTIDS on 8.4): back to file 1, a new current file.
  MysqlBinaryLogList list;
  auto before = *mysql_binlog_position("mysql-bin.000007", 900);
  list.update({binlog("mysql-bin.000006", "5000"), binlog("mysql-bin.000007", "900")}, before,
              kStart);
  auto after = *mysql_binlog_position("mysql-bin.000001", 328);
  EXPECT_TRUE(list.needs_listing(after, kStart + std::chrono::seconds(1)));
  EXPECT_EQ(numbers_and_sizes(list.segments(after)), (Segments{{1, 328}}))
      << "even before the new listing, no file from the old list is handed on";
}

TEST(MysqlBinaryLogList, EncryptedFilesAreMeasuredWithoutTheirHeader) {
  // MySQL 8.0.14+: SHOW BINARY LOGS counts the 512-byte header; SHOW BINARY LOG STATUS does not.
  MysqlBinaryLogList list;
  auto current = *mysql_binlog_position("binlog.000002", 2048);
  list.update({binlog("binlog.000001", "1512", "Yes"), binlog("binlog.000002", "2560", "Yes")},
              current, kStart);
  EXPECT_EQ(numbers_and_sizes(list.segments(current)), (Segments{{1, 1000}, {2, 2048}}));
}

// ---- Versions and errors -------------------------------------------------------------------

TEST(MysqlVersion, FlavourAndReplicaStatusStatement) {
  EXPECT_TRUE(is_mariadb_version("10.11.19-MariaDB-0+deb12u1-log"));
  EXPECT_TRUE(is_mariadb_version("5.5.5-10.4.32-MariaDB"));
  EXPECT_FALSE(is_mariadb_version("8.0.36"));
  EXPECT_STREQ(mysql_replica_status_statement("10.11.19-MariaDB-0+deb12u1-log"),
               "SHOW ALL REPLICAS STATUS");
  EXPECT_STREQ(mysql_replica_status_statement("10.5.1-MariaDB"), "SHOW ALL REPLICAS STATUS");
  EXPECT_STREQ(mysql_replica_status_statement("10.5.0-MariaDB"), "SHOW ALL SLAVES STATUS");
  EXPECT_STREQ(mysql_replica_status_statement("10.4.32-MariaDB-log"), "SHOW ALL SLAVES STATUS");
  EXPECT_STREQ(mysql_replica_status_statement("8.0.22"), "SHOW REPLICA STATUS");
  EXPECT_STREQ(mysql_replica_status_statement("8.4.0-commercial"), "SHOW REPLICA STATUS");
  EXPECT_STREQ(mysql_replica_status_statement("8.0.21-12"), "SHOW SLAVE STATUS");
  EXPECT_STREQ(mysql_replica_status_statement("5.7.44-log"), "SHOW SLAVE STATUS");
  EXPECT_STREQ(mysql_replica_status_statement("weird"), "SHOW REPLICA STATUS")
      << "unknown: the new spelling, with the fallback on a syntax error";
}

TEST(MysqlErrors, Reasons) {
  struct Case {
    unsigned number;
    bool connecting, aborted, read_timed_out;
    CollectionError want;
  };
  for (const auto& c : std::vector<Case>{
           {1045, true, false, false, CollectionError::auth},   // wrong password
           {1044, true, false, false, CollectionError::auth},   // no access to the database
           {1227, false, false, false, CollectionError::auth},  // SLAVE MONITOR missing
           {1142, false, false, false, CollectionError::auth},
           {2002, true, false, false, CollectionError::connect},
           {2003, true, false, false, CollectionError::connect},
           {2005, true, false, false, CollectionError::connect},   // unknown host
           {2013, true, false, false, CollectionError::connect},   // handshake lost
           {2026, true, false, false, CollectionError::connect},   // TLS
           {2013, true, true, false, CollectionError::timeout},    // aborted while connecting
           {0, true, false, true, CollectionError::timeout},       // connecting past the timeout
           {2013, false, true, false, CollectionError::timeout},   // aborted: socket shut down
           {2013, false, false, true, CollectionError::timeout},   // MYSQL_OPT_READ_TIMEOUT
           {2013, false, false, false, CollectionError::connect},  // server died mid-statement
           {2006, false, false, false, CollectionError::connect},  // gone since last cycle
           {1040, false, false, false, CollectionError::connect},  // too many connections
           {1064, false, false, false, CollectionError::query},
           {1193, false, false, false, CollectionError::query},
           {1045, false, true, false, CollectionError::timeout},  // whatever happens once aborted
       })
    EXPECT_EQ(classify_mysql_error(c.number, c.connecting, c.aborted, c.read_timed_out), c.want)
        << c.number << " connecting=" << c.connecting << " aborted=" << c.aborted
        << " read_timed_out=" << c.read_timed_out;
}

TEST(MysqlErrors, TimeoutsAreWholeSecondsRoundedUp) {
  using std::chrono::milliseconds;
  EXPECT_EQ(mysql_timeout_seconds(milliseconds(800)), 1u);
  EXPECT_EQ(mysql_timeout_seconds(milliseconds(1000)), 1u);
  EXPECT_EQ(mysql_timeout_seconds(milliseconds(1001)), 2u);
  EXPECT_EQ(mysql_timeout_seconds(milliseconds(2500)), 3u);
  EXPECT_EQ(mysql_timeout_seconds(milliseconds(0)), 1u) << "0 would mean no timeout";
}

TEST(MysqlErrors, LongestTimeoutTheConfigAcceptsDoesNotOverflow) {
  // Found by tests/fuzz/units_fuzz: rounding up by adding 999'999'999 ns overflowed int64.
  EXPECT_EQ(mysql_timeout_seconds(std::chrono::nanoseconds::max()), 365u * 24 * 3600);
  EXPECT_EQ(mysql_timeout_seconds(*parse_duration("106751d23h47m16.854775807s")), 365u * 24 * 3600);
}

}  // namespace
}  // namespace lagwatch
