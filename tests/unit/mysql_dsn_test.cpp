// mysql:// and mariadb:// DSNs → connection settings, and the mistakes refused at construction.
#include <gtest/gtest.h>

#include "mysql/mysql_collector.h"

namespace lagwatch {
namespace {

TEST(MysqlDsn, HostPortUserDatabase) {
  auto o = parse_mysql_dsn("mysql://lagwatch@10.0.0.2:3307/monitoring");
  EXPECT_EQ(o.host, "10.0.0.2");
  EXPECT_EQ(o.port, 3307u);
  EXPECT_EQ(o.user, "lagwatch");
  EXPECT_EQ(o.database, "monitoring");
  EXPECT_EQ(o.ssl_mode, MysqlSslMode::preferred) << "as the mysql client: TLS when offered";
}

TEST(MysqlDsn, Defaults) {
  auto o = parse_mysql_dsn("mariadb://lagwatch@db-b.internal");
  EXPECT_EQ(o.host, "db-b.internal");
  EXPECT_EQ(o.port, 3306u);
  EXPECT_EQ(o.database, "");
  EXPECT_EQ(parse_mysql_dsn("MySQL://u@h:3306/").database, "") << "scheme is case-insensitive";
}

TEST(MysqlDsn, PercentEncodingAndIpv6) {
  auto o = parse_mysql_dsn("mysql://lag%40watch@[fd00::2]:3306/my%20db");
  EXPECT_EQ(o.user, "lag@watch");
  EXPECT_EQ(o.host, "fd00::2") << "brackets are URI syntax, not part of the address";
  EXPECT_EQ(o.database, "my db");
}

TEST(MysqlDsn, TlsParameters) {
  auto o = parse_mysql_dsn(
      "mysql://lagwatch@db:3306/?ssl-mode=verify_identity&ssl-ca=/etc/ca.pem"
      "&ssl-cert=/etc/c.pem&ssl-key=/etc/k%2Bey.pem&ssl-capath=/etc/cas");
  EXPECT_EQ(o.ssl_mode, MysqlSslMode::verify_identity);
  EXPECT_EQ(o.ssl_ca, "/etc/ca.pem");
  EXPECT_EQ(o.ssl_cert, "/etc/c.pem");
  EXPECT_EQ(o.ssl_key, "/etc/k+ey.pem");
  EXPECT_EQ(o.ssl_capath, "/etc/cas");
  EXPECT_EQ(parse_mysql_dsn("mysql://u@h/?ssl-mode=REQUIRED").ssl_mode, MysqlSslMode::required);
  EXPECT_EQ(parse_mysql_dsn("mysql://u@h/?ssl-mode=verify-ca").ssl_mode, MysqlSslMode::verify_ca);
  EXPECT_EQ(parse_mysql_dsn("mysql://u@h/?ssl-mode=Disabled").ssl_mode, MysqlSslMode::disabled);
}

TEST(MysqlDsn, CaWithoutModeMeansVerify) {
  EXPECT_EQ(parse_mysql_dsn("mysql://u@h/?ssl-ca=/etc/ca.pem").ssl_mode, MysqlSslMode::verify_ca);
  EXPECT_EQ(parse_mysql_dsn("mysql://u@h/?ssl-ca=/etc/ca.pem&ssl-mode=REQUIRED").ssl_mode,
            MysqlSslMode::required)
      << "an explicit mode wins";
}

TEST(MysqlDsn, MistakesAreRefusedSayingWhat) {
  struct Case {
    const char* dsn;
    const char* says;
  };
  for (const auto& c : std::vector<Case>{
           {"postgresql://u@h/", "mysql:// or mariadb://"},
           {"mysql://u:secret@h/", "password"},
           {"mysql://u@h/?password=secret", "password"},
           {"mysql://u@h/?sslmode=require", "unknown query parameter \"sslmode\""},
           {"mysql://u@h/?ssl-mode=sometimes", "unknown ssl-mode \"sometimes\""},
           {"mysql://u@h/?ssl-mode=REQUIRED&ssl-mode=DISABLED", "given twice"},
           {"mysql://u@h/?ssl-mode=DISABLED&ssl-ca=/ca.pem", "DISABLED contradicts"},
           {"mysql://u@h/?ssl-cert=/c.pem", "ssl-cert and ssl-key go together"},
           {"mysql://u@h/?ssl-ca=", "needs a path"},
           {"mysql://u@h:0/", "not a TCP port"},
           {"mysql://u@h:99999/", "not a valid URI"},
           {"mysql:///db", "names no host"},
           {"mysql://u@h/a/b", "not one database name"},
           {"mysql://u@h/#x", "fragment"},
           {"not a uri", "not a valid URI"},
       }) {
    try {
      parse_mysql_dsn(c.dsn);
      ADD_FAILURE() << c.dsn << " was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos)
          << c.dsn << " → " << e.what();
      EXPECT_EQ(std::string(e.what()).find("secret"), std::string::npos) << "never the secret";
    }
  }
}

}  // namespace
}  // namespace lagwatch
