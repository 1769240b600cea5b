// Router push (placeholder; being implemented).
#include "push.h"

namespace lagwatch {

RouterPusher::RouterPusher(std::vector<RoutingPush> targets, const Clock& clock)
    : targets_(std::move(targets)), clock_(clock) {}
RouterPusher::~RouterPusher() = default;
void RouterPusher::on_publish(const std::shared_ptr<const ClusterSnapshot>&) {}
void RouterPusher::stop() {}
std::vector<prometheus::MetricFamily> RouterPusher::Collect() const { return {}; }

}  // namespace lagwatch
