// GET /: a self-contained HTML page (no external assets, so it works on an air-gapped network)
// showing every cluster at a glance: nodes, role, state, lag in seconds and bytes, routable,
// last error. Server-rendered, so it reads with scripts disabled (a <noscript> meta refresh
// reloads it); with scripts, a small inline script re-fetches the page every 2 s and swaps
// the figures in place, and marks them stale when lagwatch stops answering. Narrow screens
// get one card per node instead of a table row.
//
// Contract: every text that comes from a config or a database is HTML-escaped; nothing
// secret is rendered (no DSN, no password: NodeStatus holds none, and error messages are
// secret-free by the collectors' contract). A Content-Security-Policy <meta> allows only
// the page's own inline style and script (by hash) and requests to lagwatch itself.
//
// Stable hooks for tests and scrapers: <section data-cluster=NAME data-state=...> (the worst
// of the cluster's own state and its nodes'), one <tr data-node=NAME data-role=...
// data-state=... data-routable=yes|no|-> per node, whose cells carry data-label (the column
// name), and <body data-refreshes=N>, counting the script's in-place refreshes.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "clock.h"
#include "snapshot.h"

namespace lagwatch {

std::string render_status_page(const std::vector<std::shared_ptr<const ClusterSnapshot>>& snapshots);

// As above, with ages ("0.4 s ago") measured from `now`.
std::string render_status_page(const std::vector<std::shared_ptr<const ClusterSnapshot>>& snapshots,
                               WallTime now);

}  // namespace lagwatch
