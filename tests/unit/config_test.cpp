// Pins down what load_config accepts and the exact "file:line:column: message" it refuses with.
#include "config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace lagwatch {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::uint64_t kMiB = 1ULL << 20;

// A scratch directory for lagwatch.toml and the secret files a test needs; removed after.
class ConfigDir {
 public:
  ConfigDir() {
    std::string pattern = (fs::temp_directory_path() / "lagwatch_config_test.XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
  }
  ~ConfigDir() {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  ConfigDir(const ConfigDir&) = delete;
  ConfigDir& operator=(const ConfigDir&) = delete;

  std::string path(std::string_view name) const { return (dir_ / name).string(); }

  // Writes a file and returns its path. One leading newline is dropped so a raw string can
  // start on its own line and line 1 of the file is the line after R"(.
  std::string write(std::string_view name, std::string_view contents) const {
    if (contents.starts_with('\n')) contents.remove_prefix(1);
    std::ofstream(path(name), std::ios::binary) << contents;
    return path(name);
  }

  Config load(std::string_view toml) const { return load_config(write("lagwatch.toml", toml)); }

  // The ConfigError text without the directory: "lagwatch.toml:3:1: ...".
  std::string error(std::string_view toml) const {
    try {
      load(toml);
    } catch (const ConfigError& e) {
      std::string message = e.what();
      const std::string prefix = dir_.string() + "/";
      if (message.starts_with(prefix)) message.erase(0, prefix.size());
      return message;
    }
    return "(loaded without an error)";
  }

 private:
  fs::path dir_;
};

struct ErrorCase {
  std::string toml;
  std::string error;
};

void expect_errors(const std::vector<ErrorCase>& cases) {
  const ConfigDir dir;
  for (const auto& c : cases) EXPECT_EQ(dir.error(c.toml), c.error) << c.toml;
}

TEST(Config, EmptyFileMeansDefaultsAndNoClusters) {
  const ConfigDir dir;
  const Config config = dir.load("");
  EXPECT_EQ(config.path, dir.path("lagwatch.toml"));
  EXPECT_EQ(config.server.listen, ":9817");
  EXPECT_TRUE(config.clusters.empty());
  EXPECT_EQ(config.routing.max_lag_seconds, 5.0);
  EXPECT_EQ(config.routing.max_lag_bytes, std::nullopt);
  EXPECT_EQ(config.routing.rise, 3);
  EXPECT_EQ(config.routing.fall, 1);
  EXPECT_EQ(config.routing.min_serving, 1);
  EXPECT_TRUE(config.routing.fallback_to_primary);
  EXPECT_TRUE(config.routing.push.empty());
}

TEST(Config, FullDesignExampleLoads) {
  const ConfigDir dir;
  dir.write("pg", "s3cret\n");
  dir.write("push", "hmac-key");
  dir.write("slack", "https://hooks.slack.com/services/T0/B0/x\n");
  setenv("LAGWATCH_TEST_FULL_EXAMPLE", "from-env", 1);
  const Config loaded = dir.load(R"(
[server]
listen = ":9817"
[defaults]
interval = "1s"
timeout = "800ms"
thresholds = { lag_seconds = [1.0, 5.0], lag_bytes = ["10MiB", "100MiB"] }  # warning, critical
[[cluster]]
name = "orders"
engine = "postgres"
[[cluster.node]]
name = "pg-a"
dsn = "postgresql://lagwatch@10.0.0.1:5432/postgres?sslmode=prefer"
password_file = "pg"
address = "10.0.0.1:5432"
thresholds = { lag_seconds = [0.5, 2.0] }   # per-node override
[[cluster.node]]
name = "pg-b"
dsn = "host=10.0.0.2 user=lagwatch dbname=postgres"
password_file = "pg"
[[cluster]]
name = "billing"
engine = "mysql"
interval = "5s"
timeout = "2s"
routing = { max_lag_seconds = 30, min_serving = 0 }
[[cluster.node]]
name = "my-a"
dsn = "mysql://lagwatch@10.0.1.1/"
password_env = "LAGWATCH_TEST_FULL_EXAMPLE"
[routing]   # per cluster overridable
max_lag_seconds = 5.0
max_lag_bytes = "64MiB"
rise = 3
fall = 1
min_serving = 1
fallback_to_primary = true
[[routing.push]]
url = "http://router.internal:8080/lagwatch"
secret_file = "push"
[alerting]
state_file = "alerts.json"  # required with receivers (not in the design's sketch)
[[alerting.receiver]]
type = "slack"      # slack | pagerduty | webhook
url_file = "slack"
)");

  EXPECT_EQ(loaded.server.listen, ":9817");
  ASSERT_EQ(loaded.clusters.size(), 2u);

  const ClusterConfig& orders = loaded.clusters[0];
  EXPECT_EQ(orders.name, "orders");
  EXPECT_EQ(orders.engine, "postgres");
  EXPECT_EQ(orders.interval, seconds(1));
  EXPECT_EQ(orders.timeout, milliseconds(800));
  EXPECT_EQ(orders.line, 7);
  EXPECT_EQ(orders.column, 1);
  EXPECT_EQ(orders.routing.max_lag_seconds, 5.0);
  EXPECT_EQ(orders.routing.max_lag_bytes, Bytes{64 * kMiB});
  EXPECT_TRUE(orders.routing.push.empty());
  ASSERT_EQ(orders.nodes.size(), 2u);

  const NodeConfig& pg_a = orders.nodes[0];
  EXPECT_EQ(pg_a.name, "pg-a");
  EXPECT_EQ(pg_a.dsn, "postgresql://lagwatch@10.0.0.1:5432/postgres?sslmode=prefer");
  EXPECT_EQ(pg_a.address, "10.0.0.1:5432");
  ASSERT_TRUE(pg_a.password.has_value());
  EXPECT_EQ(pg_a.password->value, "s3cret");
  EXPECT_EQ(pg_a.password->origin, "password_file " + dir.path("pg"));
  EXPECT_EQ(pg_a.application_name, "pg-a");
  EXPECT_EQ(pg_a.thresholds.lag_seconds_warning, 0.5);
  EXPECT_EQ(pg_a.thresholds.lag_seconds_critical, 2.0);
  EXPECT_EQ(pg_a.thresholds.lag_bytes_warning, Bytes{10 * kMiB});
  EXPECT_EQ(pg_a.thresholds.lag_bytes_critical, Bytes{100 * kMiB});
  EXPECT_EQ(pg_a.line, 10);
  EXPECT_EQ(pg_a.column, 1);

  const NodeConfig& pg_b = orders.nodes[1];
  EXPECT_EQ(pg_b.address, "10.0.0.2:5432");
  EXPECT_EQ(pg_b.thresholds.lag_seconds_warning, 1.0);
  EXPECT_EQ(pg_b.thresholds.lag_seconds_critical, 5.0);

  const ClusterConfig& billing = loaded.clusters[1];
  EXPECT_EQ(billing.engine, "mysql");
  EXPECT_EQ(billing.interval, seconds(5));
  EXPECT_EQ(billing.timeout, seconds(2));
  EXPECT_EQ(billing.routing.max_lag_seconds, 30.0);
  EXPECT_EQ(billing.routing.min_serving, 0);
  EXPECT_EQ(billing.routing.rise, 3);
  ASSERT_EQ(billing.nodes.size(), 1u);
  EXPECT_EQ(billing.nodes[0].address, "10.0.1.1:3306");
  ASSERT_TRUE(billing.nodes[0].password.has_value());
  EXPECT_EQ(billing.nodes[0].password->value, "from-env");
  EXPECT_EQ(billing.nodes[0].password->origin, "password_env LAGWATCH_TEST_FULL_EXAMPLE");

  ASSERT_EQ(loaded.routing.push.size(), 1u);
  const RoutingPush& push = loaded.routing.push[0];
  EXPECT_EQ(push.url, "http://router.internal:8080/lagwatch");
  ASSERT_TRUE(push.secret.has_value());
  EXPECT_EQ(push.secret->value, "hmac-key");
  EXPECT_EQ(push.timeout, seconds(2));
  EXPECT_EQ(push.keepalive, seconds(30));
}

TEST(Config, SyntaxErrorNamesLineAndColumn) {
  expect_errors({
      {R"(
[server]
listen = ":9817
)",
       "lagwatch.toml:2:16: error while parsing string: unescaped control characters other than "
       "TAB (U+0009) are explicitly prohibited"},
      {R"(
[defaults]
interval = "1s"
interval = "2s"
)",
       "lagwatch.toml:3:12: error while parsing key-value pair: cannot redefine existing string "
       "'interval'"},
  });
}

TEST(Config, UnreadableFileSaysWhy) {
  try {
    load_config("/nonexistent/lagwatch.toml");
    FAIL() << "loaded a file that does not exist";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "/nonexistent/lagwatch.toml: cannot read the config file: No such file or "
                 "directory");
  }
}

TEST(Config, UnknownKeyNamesLineColumnAndSuggestion) {
  const ConfigDir dir;
  EXPECT_EQ(dir.error(R"(
[[cluster]]
name = "orders"
engine = "postgres"
[[cluster.node]]
name = "pg-b"
dsn = "host=10.0.0.2"
        adress = "10.0.0.2:5432"
)"),
            R"(lagwatch.toml:7:9: cluster "orders": node "pg-b": unknown key "adress" )"
            R"((did you mean "address"?))");
}

TEST(Config, UnknownKeysAreRefusedAtEveryLevelFirstInFileOrder) {
  expect_errors({
      {"clusters = []\n", R"(lagwatch.toml:1:1: unknown key "clusters" (did you mean "cluster"?))"},
      {"[metrics]\n", R"(lagwatch.toml:1:2: unknown key "metrics")"},
      {"[server]\nport = 9817\n", R"(lagwatch.toml:2:1: unknown key "server.port")"},
      {"[defaults]\nintreval = \"1s\"\n",
       R"(lagwatch.toml:2:1: unknown key "defaults.intreval" (did you mean "defaults.interval"?))"},
      {"[defaults]\nthresholds = { lag_second = [1, 2] }\n",
       R"(lagwatch.toml:2:16: unknown key "defaults.thresholds.lag_second" )"
       R"((did you mean "defaults.thresholds.lag_seconds"?))"},
      {"[routing]\nrize = 2\nfal = 1\n",
       R"(lagwatch.toml:2:1: unknown key "routing.rize" (did you mean "routing.rise"?))"},
      {"[routing]\nzzz = 1\naaa = 1\n", R"(lagwatch.toml:2:1: unknown key "routing.zzz")"},
      {"[[routing.push]]\nurl = \"http://r/\"\nsecret_fiel = \"x\"\n",
       R"(lagwatch.toml:3:1: routing push #1: unknown key "secret_fiel" )"
       R"((did you mean "secret_file"?))"},
      {"[[cluster]]\nname = \"orders\"\nengin = \"mysql\"\n",
       R"(lagwatch.toml:3:1: cluster "orders": unknown key "engin" (did you mean "engine"?))"},
      {"[[cluster]]\nname = \"orders\"\nengine = \"mysql\"\nrouting = { ryse = 2 }\n",
       R"(lagwatch.toml:4:13: cluster "orders": unknown key "routing.ryse" )"
       R"((did you mean "routing.rise"?))"},
  });
}

// The [alerting] schema itself is pinned in alerting_config_test.cpp.
TEST(Config, AlertingMustBeATable) {
  const ConfigDir dir;
  EXPECT_EQ(dir.error("alerting = 1\n"),
            R"(lagwatch.toml:1:12: "alerting" must be a table, not an integer)");
}

TEST(Config, WrongTypeNamesWhatIsExpectedAndWhatWasWritten) {
  const std::string cluster = "[[cluster]]\nname = \"orders\"\nengine = \"postgres\"\n";
  expect_errors({
      {cluster + "interval = 5\n",
       R"(lagwatch.toml:4:12: cluster "orders": "interval" must be a duration string like "1s", )"
       "not an integer"},
      {"[server]\nlisten = 9817\n",
       R"(lagwatch.toml:2:10: "server.listen" must be a string, not an integer)"},
      {"[routing]\nrise = \"3\"\n",
       R"(lagwatch.toml:2:8: "routing.rise" must be an integer, not a string)"},
      {"[routing]\nfallback_to_primary = \"yes\"\n",
       R"(lagwatch.toml:2:23: "routing.fallback_to_primary" must be true or false, not a string)"},
      {"[routing]\nmax_lag_seconds = \"5s\"\n",
       R"(lagwatch.toml:2:19: "routing.max_lag_seconds" must be a number, not a string)"},
      {"[routing]\nmax_lag_bytes = 1.5\n",
       R"(lagwatch.toml:2:17: "routing.max_lag_bytes" must be a size like "10MiB" or a whole )"
       "number of bytes, not a float"},
      {"[defaults]\nthresholds = { lag_seconds = 1.0 }\n",
       R"(lagwatch.toml:2:30: "defaults.thresholds.lag_seconds" must be an array )"
       "[warning, critical], not a float"},
      {"[defaults]\nthresholds = { lag_seconds = [\"1\", 2] }\n",
       R"(lagwatch.toml:2:31: "defaults.thresholds.lag_seconds" warning must be a number, )"
       "not a string"},
      {"[cluster]\nname = \"orders\"\n",
       R"(lagwatch.toml:1:1: "cluster" must be an array of tables ([[cluster]]), not a table)"},
      {cluster + "node = 1\n",
       R"(lagwatch.toml:4:8: cluster "orders": "node" must be an array of tables )"
       "([[cluster.node]]), not an integer"},
      {cluster + "[[cluster.node]]\nname = \"pg-a\"\ndsn = 5432\n",
       R"(lagwatch.toml:6:7: cluster "orders": node "pg-a": "dsn" must be a string, not an )"
       "integer"},
  });
}

TEST(Config, BadDurationRepeatsTheParsersSentence) {
  expect_errors({
      {"[defaults]\ninterval = \"5x\"\n",
       R"(lagwatch.toml:2:12: "defaults.interval": "5x" is not a duration: use a number with a )"
       R"(unit, e.g. "250ms", "1s", "2m")"},
      {"[defaults]\ntimeout = \"800\"\n",
       R"(lagwatch.toml:2:11: "defaults.timeout": "800" is not a duration: add a unit, e.g. )"
       R"("800s" or "800ms")"},
      {"[defaults]\ninterval = \"0s\"\n",
       R"(lagwatch.toml:2:12: "defaults.interval" must be longer than 0s)"},
      {"[[routing.push]]\nurl = \"http://r/\"\nkeepalive = \"-1s\"\n",
       R"(lagwatch.toml:3:13: routing push #1: "keepalive": "-1s" is not a duration: it must )"
       "not be negative"},
  });
}

TEST(Config, BadSizeRepeatsTheParsersSentence) {
  expect_errors({
      {"[defaults]\nthresholds = { lag_bytes = [\"10MiBs\", \"1GiB\"] }\n",
       R"(lagwatch.toml:2:29: "defaults.thresholds.lag_bytes" warning: "10MiBs" is not a size: )"
       R"(use a number of bytes or a number with a unit, e.g. "4096", "512KiB", "10MiB", )"
       R"("1.5GB")"},
      {"[routing]\nmax_lag_bytes = -1\n",
       R"(lagwatch.toml:2:17: "routing.max_lag_bytes" must not be negative)"},
  });
}

TEST(Config, TimeoutMustBeShorterThanInterval) {
  const std::string cluster = "[[cluster]]\nname = \"orders\"\nengine = \"postgres\"\n";
  expect_errors({
      {"[defaults]\ninterval = \"1s\"\ntimeout = \"1s\"\n",
       R"(lagwatch.toml:3:11: "defaults.timeout" (1s) must be shorter than "defaults.interval" )"
       "(1s)"},
      {"[defaults]\ninterval = \"500ms\"\n",
       R"(lagwatch.toml:2:12: "defaults.timeout" (800ms, from the built-in default) must be )"
       R"(shorter than "defaults.interval" (500ms))"},
      {cluster + "interval = \"5s\"\ntimeout = \"10s\"\n",
       R"(lagwatch.toml:5:11: cluster "orders": "timeout" (10s) must be shorter than )"
       R"("interval" (5s))"},
      {cluster + "interval = \"500ms\"\n",
       R"(lagwatch.toml:4:12: cluster "orders": "timeout" (800ms, from [defaults]) must be )"
       R"(shorter than "interval" (500ms))"},
  });
}

TEST(Config, HeartbeatSourceServerIdIsAReadModeServerId) {
  const std::string cluster = "[[cluster]]\nname = \"orders\"\nengine = \"mysql\"\n";
  const std::string node = "[[cluster.node]]\nname = \"db1\"\ndsn = \"mysql://lagwatch@10.0.0.1/\"\n";
  const ConfigDir dir;
  auto loaded =
      dir.load(cluster + "heartbeat = { mode = \"read\", source_server_id = 4294967295 }\n" + node);
  ASSERT_TRUE(loaded.clusters.at(0).heartbeat);
  EXPECT_EQ(loaded.clusters.at(0).heartbeat->source_server_id, 4294967295u);
  loaded = dir.load(cluster + "heartbeat = { mode = \"read\" }\n" + node);
  EXPECT_FALSE(loaded.clusters.at(0).heartbeat->source_server_id) << "unset: the newest row";
  expect_errors({
      {cluster + "heartbeat = { source_server_id = 3 }\n" + node,
       R"(lagwatch.toml:4:34: cluster "orders": "heartbeat.source_server_id" is for mode = "read" )"
       "(a pt-heartbeat table) only"},
      {cluster + "heartbeat = { mode = \"read\", source_server_id = 0 }\n" + node,
       R"(lagwatch.toml:4:49: cluster "orders": "heartbeat.source_server_id" must be a server_id )"
       "from 1 to 4294967295, not 0"},
      {cluster + "heartbeat = { mode = \"read\", source_server_id = 4294967296 }\n" + node,
       R"(lagwatch.toml:4:49: cluster "orders": "heartbeat.source_server_id" must be a server_id )"
       "from 1 to 4294967295, not 4294967296"},
      {cluster + "heartbeat = { mode = \"read\", source_server_id = \"3\" }\n" + node,
       R"(lagwatch.toml:4:49: cluster "orders": "heartbeat.source_server_id" must be an integer )"
       "(a server_id)"},
  });
}

TEST(Config, WarningMustNotBeAboveCritical) {
  expect_errors({
      {"[defaults]\nthresholds = { lag_seconds = [6, 5.5] }\n",
       R"(lagwatch.toml:2:30: "defaults.thresholds.lag_seconds" warning (6) must not be above )"
       "critical (5.5)"},
      {"[defaults]\nthresholds = { lag_bytes = [\"1GiB\", 1048576] }\n",
       R"(lagwatch.toml:2:28: "defaults.thresholds.lag_bytes" warning (1GiB) must not be above )"
       "critical (1048576)"},
      {"[defaults]\nthresholds = { lag_seconds = [1, 2, 3] }\n",
       R"(lagwatch.toml:2:30: "defaults.thresholds.lag_seconds" must be [warning, critical], )"
       "not 3 values"},
      {"[defaults]\nthresholds = { lag_seconds = [-1, 2] }\n",
       R"(lagwatch.toml:2:31: "defaults.thresholds.lag_seconds" warning must not be negative)"},
  });
}

TEST(Config, DuplicateNamesPointAtTheSecond) {
  expect_errors({
      {R"(
[[cluster]]
name = "orders"
engine = "postgres"
[[cluster.node]]
name = "pg-a"
dsn = "host=10.0.0.1"
[[cluster.node]]
name = "pg-a"
dsn = "host=10.0.0.2"
)",
       R"(lagwatch.toml:8:8: cluster "orders": duplicate node name "pg-a" (first declared at )"
       "line 5)"},
      {R"(
[[cluster]]
name = "orders"
engine = "postgres"
[[cluster.node]]
name = "pg-a"
dsn = "host=10.0.0.1"
[[cluster]]
name = "orders"
engine = "mysql"
)",
       R"(lagwatch.toml:8:8: duplicate cluster name "orders" (first declared at line 2))"},
  });
}

TEST(Config, SameNodeNameInTwoClustersIsFine) {
  const ConfigDir dir;
  EXPECT_NO_THROW(dir.load(R"(
[[cluster]]
name = "a"
engine = "postgres"
[[cluster.node]]
name = "db-1"
dsn = "host=10.0.0.1"
[[cluster]]
name = "b"
engine = "postgres"
[[cluster.node]]
name = "db-1"
dsn = "host=10.0.0.2"
)"));
}

TEST(Config, MissingRequiredKeyPointsAtTheTableThatLacksIt) {
  expect_errors({
      {"[[cluster]]\nengine = \"postgres\"\n", R"(lagwatch.toml:1:1: missing required key "name")"},
      {"[[cluster]]\nname = \"orders\"\n",
       R"(lagwatch.toml:1:1: cluster "orders": missing required key "engine")"},
      {"[[cluster]]\nname = \"orders\"\nengine = \"postgres\"\n[[cluster.node]]\nname = \"a\"\n",
       R"(lagwatch.toml:4:1: cluster "orders": node "a": missing required key "dsn")"},
      {"[[routing.push]]\nsecret_env = \"X\"\n",
       R"(lagwatch.toml:1:1: routing push #1: missing required key "url")"},
  });
}

TEST(Config, ClusterWithoutNodesIsRefusedButZeroClustersIsNot) {
  const ConfigDir dir;
  EXPECT_EQ(dir.error("[[cluster]]\nname = \"orders\"\nengine = \"postgres\"\n"),
            R"(lagwatch.toml:1:1: cluster "orders": a cluster needs at least one node: add a )"
            "[[cluster.node]]");
  EXPECT_TRUE(dir.load("[server]\nlisten = \"127.0.0.1:9817\"\n").clusters.empty());
}

TEST(Config, UnknownEngineIsRefused) {
  const ConfigDir dir;
  EXPECT_EQ(dir.error("[[cluster]]\nname = \"orders\"\nengine = \"postgresql\"\n"),
            R"(lagwatch.toml:3:10: cluster "orders": unknown engine "postgresql": use )"
            R"("postgres" or "mysql")");
}

TEST(Config, NamesMayOnlyUseLettersDigitsAndDotDashUnderscore) {
  expect_errors({
      {"[[cluster]]\nname = \"orders eu\"\n",
       R"(lagwatch.toml:2:8: cluster name "orders eu" may only use letters, digits, "_", "." )"
       R"(and "-")"},
      {"[[cluster]]\nname = \"o\"\nengine = \"mysql\"\n[[cluster.node]]\nname = \"\"\n",
       R"(lagwatch.toml:5:8: cluster "o": node name "" may only use letters, digits, "_", "." )"
       R"(and "-")"},
  });
}

// A postgres cluster with one node whose remaining lines are `node_lines`.
std::string postgres_node(std::string_view node_lines) {
  return "[[cluster]]\nname = \"orders\"\nengine = \"postgres\"\n[[cluster.node]]\nname = "
         "\"pg-a\"\n" +
         std::string(node_lines);
}

TEST(Config, MissingPasswordFileSaysWhy) {
  const ConfigDir dir;
  EXPECT_EQ(dir.error(postgres_node("dsn = \"host=h\"\npassword_file = \"/nonexistent/pg\"\n")),
            R"(lagwatch.toml:7:17: cluster "orders": node "pg-a": cannot read password_file )"
            R"("/nonexistent/pg": No such file or directory)");
  dir.write("empty", "\n");
  EXPECT_EQ(dir.error(postgres_node("dsn = \"host=h\"\npassword_file = \"empty\"\n")),
            R"(lagwatch.toml:7:17: cluster "orders": node "pg-a": password_file ")" +
                dir.path("empty") + R"(" is empty)");
}

TEST(Config, PasswordFileIsReadRelativeToTheConfigFileWithoutItsTrailingNewline) {
  const ConfigDir dir;
  dir.write("pg.secret", "line one\nline two\r\n");
  const Config config =
      dir.load(postgres_node("dsn = \"host=h\"\npassword_file = \"pg.secret\"\n"));
  ASSERT_TRUE(config.clusters[0].nodes[0].password.has_value());
  EXPECT_EQ(config.clusters[0].nodes[0].password->value, "line one\nline two");
}

TEST(Config, PasswordEnvMustBeSetAndNotEmpty) {
  unsetenv("LAGWATCH_TEST_UNSET");
  setenv("LAGWATCH_TEST_EMPTY", "", 1);
  expect_errors({
      {postgres_node("dsn = \"host=h\"\npassword_env = \"LAGWATCH_TEST_UNSET\"\n"),
       R"(lagwatch.toml:7:16: cluster "orders": node "pg-a": password_env )"
       R"("LAGWATCH_TEST_UNSET" is not set)"},
      {postgres_node("dsn = \"host=h\"\npassword_env = \"LAGWATCH_TEST_EMPTY\"\n"),
       R"(lagwatch.toml:7:16: cluster "orders": node "pg-a": password_env )"
       R"("LAGWATCH_TEST_EMPTY" is empty)"},
      {postgres_node("dsn = \"host=h\"\npassword_file = \"/x\"\npassword_env = \"X\"\n"),
       R"(lagwatch.toml:8:16: cluster "orders": node "pg-a": set either "password_file" or )"
       R"("password_env", not both)"},
  });
}

TEST(Config, PasswordInDsnIsRefusedWithoutRepeatingIt) {
  const std::string refused =
      R"(lagwatch.toml:6:7: cluster "orders": node "pg-a": the dsn contains a password; put it )"
      "in password_file or password_env";
  const std::string dsns[] = {
      "postgresql://lagwatch:hunter2@10.0.0.1:5432/postgres",
      "postgres://lagwatch:@10.0.0.1/postgres",
      "postgresql://lagwatch@10.0.0.1/postgres?sslmode=require&password=hunter2",
      "postgresql://lagwatch@10.0.0.1/postgres?p%61ssword=hunter2",
      "host=10.0.0.1 user=lagwatch password=hunter2",
      "host=10.0.0.1 password = 'hunter2 with spaces' user=lagwatch",
  };
  const ConfigDir dir;
  for (const std::string& dsn : dsns) {
    EXPECT_EQ(dir.error(postgres_node("dsn = \"" + dsn + "\"\n")), refused) << dsn;
  }
  EXPECT_EQ(dir.error(R"(
[[cluster]]
name = "orders"
engine = "mysql"
[[cluster.node]]
name = "pg-a"
dsn = "mysql://lagwatch:hunter2@10.0.0.1:3306/"
)"),
            refused);
}

TEST(Config, DsnMustSuitTheEngine) {
  const std::string mysql =
      "[[cluster]]\nname = \"orders\"\nengine = \"mysql\"\n"
      "[[cluster.node]]\nname = \"my-a\"\n";
  expect_errors({
      {postgres_node("dsn = \"mysql://lagwatch@h/\"\n"),
       R"(lagwatch.toml:6:7: cluster "orders": node "pg-a": a postgres dsn must be a )"
       R"(postgresql:// URI or a key=value string, not a "mysql://" URI)"},
      {postgres_node("dsn = \"host=h sslmode\"\n"),
       R"(lagwatch.toml:6:7: cluster "orders": node "pg-a": the dsn is neither a postgresql:// )"
       R"(URI nor a valid key=value string: expected "=" at character 15)"},
      {postgres_node("dsn = \"host=h application_name='lagwatch\"\n"),
       R"(lagwatch.toml:6:7: cluster "orders": node "pg-a": the dsn is neither a postgresql:// )"
       "URI nor a valid key=value string: unterminated quoted value at character 25"},
      {postgres_node("dsn = \"postgresql://h:99999/db\"\n"),
       R"(lagwatch.toml:6:7: cluster "orders": node "pg-a": the dsn is not a valid URI: Port )"
       "number was not a decimal number between 0 and 65535"},
      {postgres_node("dsn = \"\"\n"),
       R"(lagwatch.toml:6:7: cluster "orders": node "pg-a": "dsn" must not be empty)"},
      {mysql + "dsn = \"host=h user=lagwatch\"\n",
       R"(lagwatch.toml:6:7: cluster "orders": node "my-a": a mysql dsn must be a mysql:// or )"
       R"(mariadb:// URI, e.g. "mysql://lagwatch@10.0.0.2:3306/")"},
      {mysql + "dsn = \"mysql://h/\"\napplication_name = \"x\"\n",
       R"(lagwatch.toml:7:20: cluster "orders": node "my-a": "application_name" only applies to )"
       "postgres nodes"},
  });
}

struct AddressCase {
  std::string engine;
  std::string dsn;
  std::string address;
};

TEST(Config, AddressDefaultsToTheDsnHostAndTheEnginePort) {
  const AddressCase cases[] = {
      {"postgres", "postgresql://lagwatch@10.0.0.1/postgres", "10.0.0.1:5432"},
      {"postgres", "postgres://lagwatch@db.internal:6432/postgres", "db.internal:6432"},
      {"postgres", "postgresql://[fd00::1]:5433/postgres", "[fd00::1]:5433"},
      {"postgres", "postgresql:///postgres?host=10.0.0.3&port=5434", "10.0.0.3:5434"},
      {"postgres", "host=10.0.0.4 port=5435 user=lagwatch", "10.0.0.4:5435"},
      {"postgres", "hostaddr=fd00::2 user=lagwatch", "[fd00::2]:5432"},
      {"postgres", "user=lagwatch host = 'db.internal'", "db.internal:5432"},
      {"mysql", "mysql://lagwatch@10.0.1.1/", "10.0.1.1:3306"},
      {"mysql", "mariadb://lagwatch@10.0.1.2:3307/?ssl-mode=REQUIRED", "10.0.1.2:3307"},
  };
  const ConfigDir dir;
  for (const auto& c : cases) {
    const Config config = dir.load("[[cluster]]\nname = \"c\"\nengine = \"" + c.engine +
                                   "\"\n[[cluster.node]]\nname = \"n\"\ndsn = \"" + c.dsn + "\"\n");
    EXPECT_EQ(config.clusters[0].nodes[0].address, c.address) << c.dsn;
  }
}

TEST(Config, AddressMustBeSetWhenTheDsnNamesNoTcpHost) {
  const std::string no_host =
      R"(lagwatch.toml:6:7: cluster "orders": node "pg-a": the dsn names no single TCP host to )"
      R"(take "address" from; set "address" to the host:port routers should use)";
  expect_errors({
      {postgres_node("dsn = \"host=/var/run/postgresql\"\n"), no_host},
      {postgres_node("dsn = \"user=lagwatch\"\n"), no_host},
      {postgres_node("dsn = \"postgresql:///postgres\"\n"), no_host},
      {postgres_node("dsn = \"host=a,b port=5432\"\n"), no_host},
      {postgres_node("dsn = \"host=h port=x\"\n"),
       R"(lagwatch.toml:6:7: cluster "orders": node "pg-a": the dsn's port is not a number from )"
       "1 to 65535"},
      {postgres_node("dsn = \"host=h\"\naddress = \"10.0.0.1\"\n"),
       R"(lagwatch.toml:7:11: cluster "orders": node "pg-a": "address" must be "host:port", )"
       R"(e.g. "10.0.0.1:5432")"},
  });
  const ConfigDir dir;
  const Config config =
      dir.load(postgres_node("dsn = \"host=/var/run/postgresql\"\naddress = \"10.0.0.9:5432\"\n"));
  EXPECT_EQ(config.clusters[0].nodes[0].address, "10.0.0.9:5432");
}

TEST(Config, ThresholdsResolveDefaultsThenClusterThenNode) {
  const ConfigDir dir;
  const Config config = dir.load(R"(
[defaults]
thresholds = { lag_seconds = [2, 10] }
[[cluster]]
name = "orders"
engine = "postgres"
thresholds = { lag_bytes = ["1GiB", "2GiB"] }
[[cluster.node]]
name = "pg-a"
dsn = "host=10.0.0.1"
thresholds = { lag_seconds = [0.5, 2.0] }
[[cluster.node]]
name = "pg-b"
dsn = "host=10.0.0.2"
)");
  const NodeConfig& a = config.clusters[0].nodes[0];
  EXPECT_EQ(a.thresholds.lag_seconds_warning, 0.5);
  EXPECT_EQ(a.thresholds.lag_seconds_critical, 2.0);
  EXPECT_EQ(a.thresholds.lag_bytes_warning, Bytes{1024 * kMiB});
  EXPECT_EQ(a.thresholds.lag_bytes_critical, Bytes{2048 * kMiB});
  const NodeConfig& b = config.clusters[0].nodes[1];
  EXPECT_EQ(b.thresholds.lag_seconds_warning, 2.0);
  EXPECT_EQ(b.thresholds.lag_seconds_critical, 10.0);
  EXPECT_EQ(b.thresholds.lag_bytes_warning, Bytes{1024 * kMiB});
  EXPECT_EQ(b.thresholds.lag_bytes_critical, Bytes{2048 * kMiB});
}

TEST(Config, ApplyOverrideReplacesOnlyTheLevelsItSets) {
  Thresholds base;
  base.lag_seconds_warning = 1.0;
  base.lag_seconds_critical = 5.0;
  base.lag_bytes_warning = Bytes{10};
  Thresholds node;
  node.lag_seconds_critical = 3.0;
  node.lag_bytes_critical = Bytes{20};
  apply_override(base, node);
  EXPECT_EQ(base.lag_seconds_warning, 1.0);
  EXPECT_EQ(base.lag_seconds_critical, 3.0);
  EXPECT_EQ(base.lag_bytes_warning, Bytes{10});
  EXPECT_EQ(base.lag_bytes_critical, Bytes{20});
}

TEST(Config, ClusterRoutingOverridesTopLevelRoutingButNotPushTargets) {
  const ConfigDir dir;
  setenv("LAGWATCH_TEST_PUSH_SECRET", "k", 1);
  const Config config = dir.load(R"(
[routing]
rise = 5
fall = 2
keepalive = "10s"
[[routing.push]]
url = "https://router.internal/lagwatch"
secret_env = "LAGWATCH_TEST_PUSH_SECRET"
timeout = "500ms"
[[routing.push]]
url = "http://other.internal/lagwatch"
keepalive = "1m"
[[cluster]]
name = "orders"
engine = "postgres"
[cluster.routing]
fall = 3
fallback_to_primary = false
max_lag_bytes = 1048576
[[cluster.node]]
name = "pg-a"
dsn = "host=10.0.0.1"
)");
  const RoutingConfig& cluster = config.clusters[0].routing;
  EXPECT_EQ(cluster.rise, 5);
  EXPECT_EQ(cluster.fall, 3);
  EXPECT_FALSE(cluster.fallback_to_primary);
  EXPECT_EQ(cluster.max_lag_bytes, Bytes{kMiB});
  EXPECT_TRUE(cluster.push.empty());
  ASSERT_EQ(config.routing.push.size(), 2u);
  EXPECT_EQ(config.routing.push[0].timeout, milliseconds(500));
  EXPECT_EQ(config.routing.push[0].keepalive, seconds(10));
  EXPECT_EQ(config.routing.push[0].secret->origin, "secret_env LAGWATCH_TEST_PUSH_SECRET");
  EXPECT_EQ(config.routing.push[1].timeout, seconds(2));
  EXPECT_EQ(config.routing.push[1].keepalive, seconds(60));
  EXPECT_FALSE(config.routing.push[1].secret.has_value());
}

TEST(Config, RoutingValuesAreChecked) {
  const std::string cluster = "[[cluster]]\nname = \"orders\"\nengine = \"postgres\"\n";
  expect_errors({
      {"[routing]\nrise = 0\n", R"(lagwatch.toml:2:8: "routing.rise" must be at least 1, not 0)"},
      {"[routing]\nmin_serving = -1\n",
       R"(lagwatch.toml:2:15: "routing.min_serving" must be at least 0, not -1)"},
      {"[routing]\nfall = 3000000000\n",
       R"(lagwatch.toml:2:8: "routing.fall" must be at most 2147483647)"},
      {"[routing]\nmax_lag_seconds = nan\n",
       R"(lagwatch.toml:2:19: "routing.max_lag_seconds" must be finite)"},
      {cluster + "[[cluster.routing.push]]\nurl = \"http://r/\"\n",
       R"(lagwatch.toml:4:19: cluster "orders": "routing.push" can only be set in the )"
       "top-level [routing]"},
      {cluster + "routing = { keepalive = \"5s\" }\n",
       R"(lagwatch.toml:4:13: cluster "orders": "routing.keepalive" can only be set in the )"
       "top-level [routing]"},
      {"[[routing.push]]\nurl = \"ftp://router/\"\n",
       R"(lagwatch.toml:2:7: routing push #1: "url" must be an http:// or https:// URL)"},
      {"[[routing.push]]\nurl = \"https://user:hunter2@router/\"\n",
       R"(lagwatch.toml:2:7: routing push #1: the url contains a password; put secrets in )"
       "secret_file or secret_env"},
      {"[[routing.push]]\nurl = \"http://r/\"\nsecret_file = \"/nonexistent/key\"\n",
       R"(lagwatch.toml:3:15: routing push #1: cannot read secret_file "/nonexistent/key": No )"
       "such file or directory"},
      {"[server]\nlisten = \"9817\"\n",
       R"(lagwatch.toml:2:10: "server.listen" must be "host:port" or ":port", e.g. ":9817")"},
  });
}

TEST(Config, ApplicationNameDefaultsToTheNodeName) {
  const ConfigDir dir;
  const Config config = dir.load(postgres_node(
      "dsn = \"host=10.0.0.1\"\n[[cluster.node]]\nname = \"pg-b\"\ndsn = \"host=10.0.0.2\"\n"
      "application_name = \"standby_b\"\n"));
  EXPECT_EQ(config.clusters[0].nodes[0].application_name, "pg-a");
  EXPECT_EQ(config.clusters[0].nodes[1].application_name, "standby_b");
}

}  // namespace
}  // namespace lagwatch
