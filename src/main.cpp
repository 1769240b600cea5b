// lagwatch's entry point: flags, config, wiring of collectors → scheduler → snapshots → HTTP,
// router pushes and the notifier.
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <spdlog/spdlog.h>

#include "agent_check.h"
#include "api.h"
#include "builtin.h"
#include "collector.h"
#include "config.h"
#include "heartbeat.h"
#include "http_server.h"
#include "log.h"
#include "long_poll.h"
#include "notifier.h"
#include "notifier_payloads.h"
#include "push.h"
#include "reloader.h"
#include "revision.h"
#include "scheduler.h"
#include "shard.h"
#include "snapshot_store.h"

namespace {

std::string engines_of(const lagwatch::CollectorRegistry& registry) {
  std::string out;
  for (const auto& e : registry.engines()) out += (out.empty() ? "" : ", ") + e;
  return out;
}

// Checks what toml parsing cannot: that every engine named has a collector, and that each
// node's collector accepts its DSN (collectors parse it when built; nothing connects here).
void check_engines(const lagwatch::Config& config, const lagwatch::CollectorRegistry& registry) {
  for (const auto& c : config.clusters) {
    if (!registry.has(c.engine))
      throw lagwatch::ConfigError(config.path + ":" + std::to_string(c.line) + ":" +
                                  std::to_string(c.column) + ": cluster \"" + c.name +
                                  "\": engine \"" + c.engine + "\" has no collector (known: " +
                                  engines_of(registry) + ")");
    for (const auto& n : c.nodes) {
      try {
        registry.create(c.engine, {&c, &n, c.timeout});
      } catch (const std::exception& e) {
        throw lagwatch::ConfigError(config.path + ":" + std::to_string(n.line) + ":" +
                                    std::to_string(n.column) + ": cluster \"" + c.name +
                                    "\": node \"" + n.name + "\": dsn: " + e.what());
      }
    }
  }
}

// glibc gives threads that meet on a malloc lock arenas of their own, up to 8 per core, and
// each arena keeps the pages of its own peak: with lagwatch's ~14 threads, RSS crept by
// 40-120 KiB a minute through a 10-minute soak while the live heap stayed flat (heaptrack;
// tests/soak/README.md). lagwatch allocates little, so two arenas cost no contention that
// matters and its RSS levels off within minutes. Before any thread starts; an operator's
// MALLOC_ARENA_MAX wins.
//
// Also, blocks of 1 MiB and more (a large fleet's /metrics text, a few MB per scrape) are
// always mapped on their own and returned when freed. By default glibc raises that threshold
// to the size of the last such block freed, after which every scrape's text comes from the
// heap and its pages stay resident between scrapes. An operator's MALLOC_MMAP_THRESHOLD_
// wins.
void tune_malloc() {
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 2);
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr) mallopt(M_MMAP_THRESHOLD, 1 << 20);
}

// systemd and most shells start a service with a soft limit of 1024 open files, below what
// the HTTP server's connection cap (4096) and the database connections need together; past
// it, accept() fails and the clients still waiting get nothing. Raise the soft limit towards
// the hard one, as Go's runtime does for its servers; 65536 is plenty and keeps an unlimited
// hard limit from meaning a huge fd table.
void raise_open_files_limit() {
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) != 0) return;
  const rlim_t wanted = std::min<rlim_t>(files.rlim_max, 65536);
  if (files.rlim_cur >= wanted) return;
  files.rlim_cur = wanted;
  setrlimit(RLIMIT_NOFILE, &files);
}

}  // namespace

int main(int argc, char** argv) {
  tune_malloc();
  raise_open_files_limit();
  CLI::App app{"lagwatch: measures database replication lag, publishes it to Prometheus, and "
               "tells routers which replicas are fit to serve reads."};
  std::string config_path, check_path, log_level = "info", log_format = "logfmt";
  bool version = false;
  app.add_option("--config", config_path, "The config file (TOML)");
  app.add_option("--check-config", check_path, "Check this config file and exit");
  app.add_option("--log-level", log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.add_option("--log-format", log_format, "logfmt (default) or json")
      ->check(CLI::IsMember({"logfmt", "json"}));
  app.add_flag("--version", version, "Print the version and exit");
  CLI11_PARSE(app, argc, argv);

  if (version) {
    std::cout << "lagwatch " << LAGWATCH_VERSION << " (revision " << lagwatch::kSourceRevision << ")\n";
    return 0;
  }
  lagwatch::init_logging(
      log_format == "json" ? lagwatch::LogFormat::json : lagwatch::LogFormat::logfmt, log_level);

  lagwatch::CollectorRegistry registry;
  lagwatch::register_builtin_collectors(registry);

  if (!check_path.empty()) {
    try {
      auto config = lagwatch::load_config(check_path);
      check_engines(config, registry);
      std::size_t nodes = 0;
      for (const auto& c : config.clusters) nodes += c.nodes.size();
      std::cout << check_path << ": ok (" << config.clusters.size() << " clusters, " << nodes
                << " nodes)\n";
      return 0;
    } catch (const lagwatch::ConfigError& e) {
      std::cerr << e.what() << "\n";
      return 1;
    }
  }
  if (config_path.empty()) {
    std::cerr << "lagwatch: --config FILE is required (or --check-config FILE)\n";
    return 2;
  }

  lagwatch::Config config;
  try {
    config = lagwatch::load_config(config_path);
    check_engines(config, registry);
    lagwatch::keep_own_shard(config);
  } catch (const lagwatch::ConfigError& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }

  // Signals are taken synchronously by this thread only.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  lagwatch::SystemClock clock;
  lagwatch::SnapshotStore store;
  lagwatch::ListWatchers watchers;
  store.subscribe([&watchers](const auto& snapshot) { watchers.on_publish(snapshot); });
  std::unique_ptr<lagwatch::RouterPusher> pusher;
  std::unique_ptr<lagwatch::Notifier> notifier;
  std::unique_ptr<lagwatch::Scheduler> scheduler;
  std::unique_ptr<lagwatch::HttpServer> server;
  std::unique_ptr<lagwatch::AgentCheckServer> agent;
  std::unique_ptr<lagwatch::ConfigReloader> reloader;
  std::unique_ptr<lagwatch::HeartbeatWriter> heartbeat;
  try {
    if (!config.server.agent_listen.empty())
      agent = std::make_unique<lagwatch::AgentCheckServer>(config.server.agent_listen, store);
    lagwatch::ApiOptions api_options;
    if (!config.routing.push.empty()) {
      pusher = std::make_unique<lagwatch::RouterPusher>(config.routing.push, clock);
      store.subscribe([p = pusher.get()](const auto& snapshot) { p->on_publish(snapshot); });
      api_options.extra_collectables.push_back(pusher.get());
    }
    if (!config.alerting.receivers.empty()) {
      // A copy: the reloader compares the file's [alerting] with what the file said at start,
      // not with the URL derived here.
      lagwatch::AlertingConfig alerting = config.alerting;
      if (alerting.status_page_url.empty()) {
        char host[256] = {};
        gethostname(host, sizeof host - 1);
        alerting.status_page_url = lagwatch::default_status_page_url(config.server.listen, host);
      }
      notifier = std::make_unique<lagwatch::Notifier>(std::move(alerting), config.clusters, clock);
      store.subscribe([n = notifier.get()](const auto& snapshot) { n->on_publish(snapshot); });
      api_options.extra_collectables.push_back(notifier.get());
    }
    scheduler = std::make_unique<lagwatch::Scheduler>(config.clusters, registry, clock, store);
    reloader = std::make_unique<lagwatch::ConfigReloader>(
        config, registry, *scheduler, clock,
        [&registry](const lagwatch::Config& c) { check_engines(c, registry); },
        [n = notifier.get()](const std::vector<lagwatch::ClusterConfig>& clusters) {
          if (n) n->on_clusters_changed(clusters);
        });
    api_options.extra_collectables.push_back(reloader.get());
    api_options.reload = [r = reloader.get()] { return r->reload(); };
    heartbeat = std::make_unique<lagwatch::HeartbeatWriter>(config.clusters, registry, store, clock);
    if (!heartbeat->empty()) api_options.extra_collectables.push_back(heartbeat.get());
    auto api = std::make_shared<lagwatch::Api>(store, watchers, api_options);
    store.subscribe([api](const auto& snapshot) { api->on_publish(snapshot); });
    lagwatch::HttpServerOptions http;
    http.listen = config.server.listen;
    http.tls = config.server.tls;
    if (config.server.basic_auth)
      http.auth = std::make_shared<const lagwatch::BasicAuth>(*config.server.basic_auth);
    server = std::make_unique<lagwatch::HttpServer>(
        http, [api](const lagwatch::HttpRequest& r, lagwatch::Responder respond) {
          api->handle(r, std::move(respond));
        });
  } catch (const std::exception& e) {
    std::cerr << "lagwatch: " << e.what() << "\n";
    return 1;
  }
  scheduler->start();
  server->start();
  if (agent) agent->start();
  lagwatch::log_info("lagwatch started", {{"version", LAGWATCH_VERSION},
                                          {"listen", config.server.listen},
                                          {"port", server->port()},
                                          {"clusters", config.clusters.size()}});

  for (;;) {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGHUP) {
      reloader->reload();
      continue;
    }
    lagwatch::log_info("stopping", {{"signal", sig}});
    break;
  }
  if (agent) agent->stop();
  heartbeat->stop();
  server->stop();
  if (pusher) pusher->stop();
  if (notifier) notifier->stop();
  scheduler->stop();
  return 0;
}
