// register_builtin_collectors(): the one place that lists the engines lagwatch knows.
#include "builtin.h"

#include "mysql/mysql_collector.h"
#include "postgres/postgres_collector.h"

namespace lagwatch {

void register_builtin_collectors(CollectorRegistry& registry) {
  registry.add("postgres", [](const CollectorContext& c) { return make_postgres_collector(c); });
  registry.add("mysql", [](const CollectorContext& c) { return make_mysql_collector(c); });
  registry.add_heartbeat("postgres",
                         [](const CollectorContext& c) { return make_postgres_heartbeat_sink(c); });
  registry.add_heartbeat("mysql",
                         [](const CollectorContext& c) { return make_mysql_heartbeat_sink(c); });
}

}  // namespace lagwatch
