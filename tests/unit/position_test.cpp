// Positions: parsing and byte distances of both engines.
#include "position.h"

#include <gtest/gtest.h>

namespace lagwatch {
namespace {

TEST(Position, ParsesPostgresLsn) {
  auto p = parse_pg_lsn("16/B374D848");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->offset, (0x16ull << 32) | 0xB374D848ull);
  EXPECT_EQ(p->segment, 0u);
  EXPECT_EQ(format_pg_lsn(p->offset), "16/B374D848");
  EXPECT_EQ(format_pg_lsn(0x3000060), "0/3000060");
}

TEST(Position, RejectsMalformedLsn) {
  for (const char* bad : {"", "/", "16", "16/", "/1", "G/1", "1/1/1", "123456789/0", " 0/1"})
    EXPECT_FALSE(parse_pg_lsn(bad)) << bad;
}

TEST(Position, BytesBetweenPostgresPositions) {
  EXPECT_EQ(bytes_between({0, 100, ""}, {0, 1124, ""}, {}), 1024u);
  EXPECT_EQ(bytes_between({0, 2000, ""}, {0, 1124, ""}, {}), 0u) << "never negative";
}

TEST(Position, MysqlBinlogCoordinates) {
  auto p = mysql_binlog_position("mysql-bin.000042", 1234);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->segment, 42u);
  EXPECT_EQ(p->offset, 1234u);
  EXPECT_EQ(p->text, "mysql-bin.000042:1234");
  EXPECT_FALSE(mysql_binlog_position("mysql-bin", 4));
  EXPECT_FALSE(mysql_binlog_position("mysql-bin.", 4));
  EXPECT_FALSE(mysql_binlog_position("mysql-bin.00x1", 4));
}

TEST(Position, BytesAcrossBinlogRotations) {
  std::vector<Segment> logs{{1, 1000}, {2, 500}, {3, 800}, {4, 120}};
  // 1000-900 left in file 1, all of 2 and 3, 120 into 4.
  EXPECT_EQ(bytes_between({1, 900, ""}, {4, 120, ""}, logs), 100u + 500u + 800u + 120u);
  EXPECT_EQ(bytes_between({3, 800, ""}, {4, 4, ""}, logs), 4u);
}

TEST(Position, UnknownDistanceWhenABinlogIsMissing) {
  std::vector<Segment> logs{{3, 800}, {4, 120}};
  EXPECT_FALSE(bytes_between({1, 900, ""}, {4, 120, ""}, logs));
}

}  // namespace
}  // namespace lagwatch
