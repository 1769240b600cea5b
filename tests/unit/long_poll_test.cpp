// Long-poll waiters: answered once, by a publish past their index or at their deadline.
#include "long_poll.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace lagwatch {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<const ClusterSnapshot> snapshot(const std::string& cluster,
                                                std::uint64_t generation) {
  auto s = std::make_shared<ClusterSnapshot>();
  s->name = cluster;
  s->list.generation = generation;
  return s;
}

TEST(LongPoll, a_waiter_is_answered_once_by_the_first_publish_past_its_index) {
  ListWatchers watchers;
  std::atomic<int> calls{0};
  std::atomic<std::uint64_t> seen{0};
  ASSERT_TRUE(watchers.wait("orders", 1, std::chrono::steady_clock::now() + 1h,
                            [&](std::shared_ptr<const ClusterSnapshot> s) {
                              ++calls;
                              seen = s->list.generation;
                            }));
  watchers.on_publish(snapshot("orders", 1));  // not past index 1
  watchers.on_publish(snapshot("other", 5));   // another cluster
  EXPECT_EQ(calls, 0);
  watchers.on_publish(snapshot("orders", 2));
  watchers.on_publish(snapshot("orders", 3));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(seen, 2u);
  EXPECT_EQ(watchers.waiting(), 0u);
}

TEST(LongPoll, a_waiter_behind_the_latest_list_is_answered_at_once) {
  ListWatchers watchers;
  watchers.on_publish(snapshot("orders", 4));
  int calls = 0;
  ASSERT_TRUE(watchers.wait("orders", 3, std::chrono::steady_clock::now() + 1h,
                            [&](std::shared_ptr<const ClusterSnapshot>) { ++calls; }));
  EXPECT_EQ(calls, 1);  // on this thread, before wait() returned
}

// Regression (found by AddressSanitizer): the timer thread waited until the earliest
// deadline by reference to the key inside the waiter map, and a publish that answered that
// waiter erased the key while the thread slept; on waking, the thread read freed memory.
// Here the timer thread is woken (by each new waiter) after the publish that answered the
// waiter it was waiting for, many times over; the ASan build of this test catches a read
// of the erased key.
TEST(LongPoll, publishes_answering_the_earliest_waiter_while_the_timer_waits_on_it_are_safe) {
  ListWatchers watchers;
  std::atomic<int> calls{0};
  constexpr int kRounds = 2000;
  for (int i = 0; i < kRounds; ++i) {
    ASSERT_TRUE(watchers.wait("orders", static_cast<std::uint64_t>(i),
                              std::chrono::steady_clock::now() + 1h,
                              [&](std::shared_ptr<const ClusterSnapshot>) { ++calls; }));
    std::this_thread::yield();  // let the timer thread take the new earliest deadline
    watchers.on_publish(snapshot("orders", static_cast<std::uint64_t>(i) + 1));
  }
  EXPECT_EQ(calls, kRounds);
  EXPECT_EQ(watchers.waiting(), 0u);
}

}  // namespace
}  // namespace lagwatch
