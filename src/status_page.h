// GET /: a self-contained HTML page (no external assets) showing every cluster at a glance.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "snapshot.h"

namespace lagwatch {

std::string render_status_page(const std::vector<std::shared_ptr<const ClusterSnapshot>>& snapshots);

}  // namespace lagwatch
