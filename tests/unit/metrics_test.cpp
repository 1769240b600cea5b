// /metrics text: rendered per cluster ahead of the scrape, the same text as serializing
// every family at once.
#include "metrics.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <sstream>

namespace lagwatch {
namespace {

std::shared_ptr<const ClusterSnapshot> cluster(const std::string& name, const std::string& engine,
                                               std::uint64_t cycle, double lag_seconds) {
  auto s = std::make_shared<ClusterSnapshot>();
  s->name = name;
  s->engine = engine;
  s->cycle = cycle;
  s->primaries = 1;
  NodeStatus primary;
  primary.name = "a";
  primary.up = true;
  primary.role = Role::primary;
  NodeStatus replica;
  replica.name = "b";
  replica.up = true;
  replica.role = Role::replica;
  ChannelStatus channel;
  channel.lag_seconds = lag_seconds;
  channel.lag_bytes = 4096;
  channel.connected = true;
  channel.applying = true;
  replica.channels.push_back(channel);
  replica.stats.observe(0.004, CollectionError::none);
  s->nodes = {primary, replica};
  return s;
}

std::string serialize_all_at_once(const SnapshotStore& store) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, render_metrics(store.all()));
  return out.str();
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(MetricsText, is_the_text_of_every_family_serialized_at_once) {
  SnapshotStore store;
  store.expect({"orders", "users", "billing"});
  MetricsText text(store);
  // orders is rendered on publish, users at the scrape; only users has MySQL's families,
  // billing is a second postgres cluster whose samples must join orders' under one header.
  store.publish(cluster("orders", "postgres", 1, 0.5));
  text.on_publish(store.get("orders"));
  store.publish(cluster("users", "mysql", 1, 2.0));
  store.publish(cluster("billing", "postgres", 1, 7.0));
  text.on_publish(store.get("billing"));

  auto scraped = text.serialize({});
  EXPECT_EQ(scraped, serialize_all_at_once(store));
  EXPECT_EQ(count(scraped, "# TYPE lagwatch_replica_lag_seconds gauge"), 1u) << scraped;
  EXPECT_EQ(count(scraped, "# TYPE lagwatch_replica_last_io_errno gauge"), 1u) << scraped;
  EXPECT_EQ(count(scraped, "lagwatch_replica_lag_seconds{"), 3u) << scraped;
}

TEST(MetricsText, a_scrape_shows_the_latest_snapshot_even_before_it_is_rendered) {
  SnapshotStore store;
  store.expect({"orders"});
  MetricsText text(store);
  store.publish(cluster("orders", "postgres", 1, 0.5));
  text.on_publish(store.get("orders"));
  auto older = store.get("orders");
  store.publish(cluster("orders", "postgres", 2, 9.25));
  // The publish of cycle 2 has not reached on_publish; a late on_publish of cycle 1 must
  // not make the scrape go back in time.
  text.on_publish(older);
  auto scraped = text.serialize({});
  EXPECT_NE(scraped.find("node=\"b\",engine=\"postgres\"} 9.25"), std::string::npos) << scraped;
  EXPECT_EQ(scraped.find("node=\"b\",engine=\"postgres\"} 0.5"), std::string::npos) << scraped;
  EXPECT_EQ(scraped, serialize_all_at_once(store));
}

TEST(MetricsText, clusters_a_reload_removes_leave_the_text) {
  SnapshotStore store;
  store.expect({"orders", "users"});
  MetricsText text(store);
  for (const auto* name : {"orders", "users"}) {
    store.publish(cluster(name, "postgres", 1, 1.0));
    text.on_publish(store.get(name));
  }
  ASSERT_NE(text.serialize({}).find("cluster=\"users\""), std::string::npos);
  store.expect({"orders"});
  auto scraped = text.serialize({});
  EXPECT_EQ(scraped.find("cluster=\"users\""), std::string::npos) << scraped;
  EXPECT_EQ(scraped, serialize_all_at_once(store));
}

}  // namespace
}  // namespace lagwatch
