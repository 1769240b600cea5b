// The [alerting] schema: what load_config accepts, its defaults, and the exact
// "file:line:column: message" it refuses with — never quoting a receiver's URL or key.
#include "config.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

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
using namespace std::chrono_literals;

constexpr std::string_view kSlackUrl = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX";

// A scratch directory for lagwatch.toml and the secret files a test needs; removed after.
class ConfigDir {
 public:
  ConfigDir() {
    std::string pattern = (fs::temp_directory_path() / "lagwatch_alerting_test.XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    write("slack.url", fmt::format("{}\n", kSlackUrl));
    write("pd.key", "R0UT1NGKEY\n");
  }
  ~ConfigDir() {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  ConfigDir(const ConfigDir&) = delete;
  ConfigDir& operator=(const ConfigDir&) = delete;

  std::string path(std::string_view name) const { return (dir_ / name).string(); }
  std::string write(std::string_view name, std::string_view contents) const {
    if (contents.starts_with('\n')) contents.remove_prefix(1);
    std::ofstream(path(name), std::ios::binary) << contents;
    return path(name);
  }
  Config load(std::string_view toml) const { return load_config(write("lagwatch.toml", toml)); }
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

TEST(AlertingConfig, DefaultsWithoutTheTable) {
  const ConfigDir dir;
  const AlertingConfig a = dir.load("").alerting;
  EXPECT_EQ(a.group_wait, 10s);
  EXPECT_EQ(a.repeat_interval, 4h);
  EXPECT_EQ(a.keep_firing_for, 0s);
  EXPECT_EQ(a.state_file, "");
  EXPECT_EQ(a.status_page_url, "");
  EXPECT_EQ(a.runbook_url, "https://github.com/lagwatch/lagwatch/blob/main/docs/runbook.md");
  EXPECT_TRUE(a.receivers.empty());
  const auto for_of = [&](Condition c) { return a.for_durations[static_cast<std::size_t>(c)]; };
  EXPECT_EQ(for_of(Condition::lag_warning), 1min);
  EXPECT_EQ(for_of(Condition::lag_critical), 30s);
  EXPECT_EQ(for_of(Condition::node_down), 30s);
  EXPECT_EQ(for_of(Condition::replica_disconnected), 30s);
  EXPECT_EQ(for_of(Condition::replica_not_applying), 1min);
  EXPECT_EQ(for_of(Condition::split_brain), 0s);
  EXPECT_EQ(for_of(Condition::no_primary), 30s);
  EXPECT_EQ(for_of(Condition::no_routable_replica), 1min);
}

TEST(AlertingConfig, FullExampleLoads) {
  const ConfigDir dir;
  setenv("LAGWATCH_TEST_WEBHOOK", "http://127.0.0.1:9999/hook?token=abc", 1);
  const Config config = dir.load(R"(
[alerting]
group_wait = "1s"
repeat_interval = "1h"
keep_firing_for = "0s"
state_file = "alerts.json"
status_page_url = "https://lagwatch.example/"
[alerting.for]
lag_critical = "10s"
split_brain = "5s"
[[alerting.receiver]]
name = "team-chat"
type = "slack"
url_file = "slack.url"
severities = ["warning", "critical"]
[[alerting.receiver]]
name = "oncall"
type = "pagerduty"
routing_key_file = "pd.key"
conditions = ["lag_critical", "node_down", "split_brain"]
timeout = "3s"
[[alerting.receiver]]
type = "pagerduty"
name = "pd-test"
routing_key_file = "pd.key"
url = "http://127.0.0.1:8080/v2/enqueue"
[[alerting.receiver]]
type = "webhook"
url_env = "LAGWATCH_TEST_WEBHOOK"
repeat_interval = "30m"
[[alerting.receiver]]
type = "alertmanager"
url = "http://alertmanager:9093"
)");
  const AlertingConfig& a = config.alerting;
  EXPECT_EQ(a.group_wait, 1s);
  EXPECT_EQ(a.repeat_interval, 1h);
  EXPECT_EQ(a.state_file, dir.path("alerts.json"));
  EXPECT_EQ(a.status_page_url, "https://lagwatch.example/");
  EXPECT_EQ(a.for_durations[static_cast<std::size_t>(Condition::lag_critical)], 10s);
  EXPECT_EQ(a.for_durations[static_cast<std::size_t>(Condition::split_brain)], 5s);
  EXPECT_EQ(a.for_durations[static_cast<std::size_t>(Condition::node_down)], 30s);
  ASSERT_EQ(a.receivers.size(), 5u);

  const AlertReceiver& slack = a.receivers[0];
  EXPECT_EQ(slack.name, "team-chat");
  EXPECT_EQ(slack.type, ReceiverType::slack);
  EXPECT_EQ(slack.url.value, kSlackUrl);
  EXPECT_EQ(slack.url.origin, "url_file " + dir.path("slack.url"));
  EXPECT_EQ(slack.severities, (std::vector<Severity>{Severity::warning, Severity::critical}));
  EXPECT_TRUE(slack.conditions.empty());
  EXPECT_EQ(slack.timeout, 10s);
  EXPECT_EQ(slack.repeat_interval, std::nullopt);

  const AlertReceiver& pd = a.receivers[1];
  EXPECT_EQ(pd.type, ReceiverType::pagerduty);
  EXPECT_EQ(pd.url.value, "https://events.pagerduty.com/v2/enqueue");
  ASSERT_TRUE(pd.routing_key);
  EXPECT_EQ(pd.routing_key->value, "R0UT1NGKEY");
  EXPECT_EQ(pd.conditions, (std::vector<Condition>{Condition::lag_critical, Condition::node_down,
                                                   Condition::split_brain}));
  EXPECT_EQ(pd.timeout, 3s);
  EXPECT_EQ(a.receivers[2].url.value, "http://127.0.0.1:8080/v2/enqueue");

  EXPECT_EQ(a.receivers[3].name, "webhook") << "the type is the default name";
  EXPECT_EQ(a.receivers[3].url.value, "http://127.0.0.1:9999/hook?token=abc");
  EXPECT_EQ(a.receivers[3].repeat_interval, 30min);
  EXPECT_EQ(a.receivers[4].type, ReceiverType::alertmanager);
  EXPECT_EQ(a.receivers[4].repeat_interval, 1min) << "Alertmanager forgets alerts not re-sent";
}

TEST(AlertingConfig, MistakesNameLineColumnAndWhatToDo) {
  const ConfigDir dir;
  const std::string head = "[alerting]\nstate_file = \"alerts.json\"\n";
  const struct {
    std::string toml;
    std::string error;
  } cases[] = {
      {"[alerting]\ngroup_wiat = \"1s\"\n",
       R"(lagwatch.toml:2:1: unknown key "alerting.group_wiat" (did you mean "alerting.group_wait"?))"},
      {"[alerting.for]\nlag_critcal = \"1s\"\n",
       R"(lagwatch.toml:2:1: unknown condition "lag_critcal" (did you mean "lag_critical"?))"},
      {"[alerting.for]\nnode_down = \"soon\"\n",
       R"(lagwatch.toml:2:13: "alerting.for.node_down": "soon" is not a duration: use a number with a unit, e.g. "250ms", "1s", "2m")"},
      {"[alerting]\nrepeat_interval = \"0s\"\n",
       R"(lagwatch.toml:2:19: "alerting.repeat_interval" must be longer than 0s)"},
      {"[[alerting.receiver]]\ntype = \"slack\"\nurl_file = \"slack.url\"\n",
       R"(lagwatch.toml:1:1: receivers need "state_file", where lagwatch keeps which alerts it has sent (e.g. "/var/lib/lagwatch/alerts.json"), so a restart neither re-pages nor forgets a resolve)"},
      {head + "[[alerting.receiver]]\ntype = \"email\"\n",
       R"(lagwatch.toml:4:8: alerting receiver #1: unknown receiver type "email": use "slack", "pagerduty", "webhook" or "alertmanager")"},
      {head + "[[alerting.receiver]]\ntype = \"slack\"\nurl = \"" + std::string(kSlackUrl) + "\"\n",
       R"(lagwatch.toml:5:1: alerting receiver #1: a slack URL is a credential (its path is the token): put it in url_file or url_env)"},
      {head + "[[alerting.receiver]]\ntype = \"webhook\"\n",
       R"(lagwatch.toml:3:1: alerting receiver #1: webhook receiver "webhook" needs "url_file" or "url_env")"},
      {head + "[[alerting.receiver]]\ntype = \"pagerduty\"\n",
       R"(lagwatch.toml:3:1: alerting receiver #1: pagerduty receiver "pagerduty" needs "routing_key_file" or "routing_key_env")"},
      {head + "[[alerting.receiver]]\ntype = \"pagerduty\"\nrouting_key_env = "
              "\"LAGWATCH_TEST_UNSET_KEY\"\n",
       R"(lagwatch.toml:5:19: alerting receiver #1: routing_key_env "LAGWATCH_TEST_UNSET_KEY" is not set)"},
      {head + "[[alerting.receiver]]\ntype = \"slack\"\nurl_file = \"pd.key\"\n",
       R"(lagwatch.toml:5:12: alerting receiver #1: the receiver's URL must be an http:// or https:// URL)"},
      {head + "[[alerting.receiver]]\ntype = \"slack\"\nurl_file = \"slack.url\"\nconditions = "
              "[\"lag\"]\n",
       R"(lagwatch.toml:6:15: alerting receiver #1: unknown condition "lag" (known: lag_warning, lag_critical, node_down, replica_disconnected, replica_not_applying, split_brain, no_primary, no_routable_replica))"},
      {head + "[[alerting.receiver]]\ntype = \"slack\"\nurl_file = \"slack.url\"\nseverities = "
              "[\"page\"]\n",
       R"(lagwatch.toml:6:15: alerting receiver #1: unknown severity "page": use "warning" or "critical")"},
      {head +
           "[[alerting.receiver]]\ntype = \"slack\"\nurl_file = \"slack.url\"\nseverities = []\n",
       R"(lagwatch.toml:6:14: alerting receiver #1: "severities" must not be empty; leave it out to send every one)"},
      {head + "[[alerting.receiver]]\ntype = \"slack\"\nurl_file = \"slack.url\"\n"
              "[[alerting.receiver]]\ntype = \"slack\"\nurl_file = \"slack.url\"\n",
       R"(lagwatch.toml:6:1: alerting receiver #2: duplicate receiver name "slack" (first declared at line 3); give each receiver its own "name")"},
      {head + "[[alerting.receiver]]\ntype = \"slack\"\nurl_file = \"slack.url\"\nrouting_key_file "
              "= \"pd.key\"\n",
       R"(lagwatch.toml:6:1: alerting receiver #1: "routing_key_file" only applies to pagerduty receivers)"},
  };
  for (const auto& c : cases) {
    const std::string error = dir.error(c.toml);
    EXPECT_EQ(error, c.error) << c.toml;
    EXPECT_EQ(error.find("XXXXsecret"), std::string::npos) << "a secret URL in a message";
  }
}

}  // namespace
}  // namespace lagwatch
