// The collectors that ship with lagwatch.
#pragma once

#include "collector.h"

namespace lagwatch {

// Registers every built-in collector by engine name. main() calls it once; an explicit call
// (not a static registrar) so a static library can never silently drop a collector.
void register_builtin_collectors(CollectorRegistry& registry);

}  // namespace lagwatch
