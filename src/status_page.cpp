// Status page (see status_page.h). Server-rendered and refreshed by the browser every few
// seconds, so it works with scripts disabled and on air-gapped networks.
#include "status_page.h"

#include <fmt/format.h>

namespace lagwatch {
namespace {

std::string escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string human_bytes(std::uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", b) : fmt::format("{:.1f} {}", v, units[u]);
}

constexpr const char* kStyle = R"css(
body{font-family:system-ui,sans-serif;margin:1rem;color:#222}
table{border-collapse:collapse;width:100%;margin-bottom:1.5rem}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #ddd;font-size:.95rem}
.ok{background:#d9f2d9}.warning{background:#fff1c2}.critical{background:#f8d0d0}
.unknown{background:#e4e4e4}h2{margin-bottom:.3rem}.meta{color:#666;font-size:.85rem}
@media (max-width:600px){td,th{padding:.2rem;font-size:.8rem}}
)css";

}  // namespace

std::string render_status_page(const std::vector<std::shared_ptr<const ClusterSnapshot>>& snapshots) {
  std::string html = fmt::format(
      "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
      "<meta http-equiv=\"refresh\" content=\"2\"><title>lagwatch</title><style>{}</style>"
      "</head><body><h1>lagwatch</h1>",
      kStyle);
  if (snapshots.empty()) html += "<p>No cluster has completed a collection cycle yet.</p>";
  for (const auto& s : snapshots) {
    html += fmt::format(
        "<h2 id=\"cluster-{0}\">{0} <small class=\"{1}\">{1}</small></h2>"
        "<p class=\"meta\">{2} · writable primaries: {3} · cycle {4}</p>"
        "<table><thead><tr><th>node</th><th>role</th><th>state</th><th>lag</th>"
        "<th>lag bytes</th><th>connected</th><th>applying</th><th>last error</th></tr></thead><tbody>",
        escape(s->name), health_name(s->state), escape(s->engine), s->primaries, s->cycle);
    for (const auto& n : s->nodes) {
      std::string lag = "—", bytes = "—", connected = "—", applying = "—";
      for (const auto& c : n.channels) {
        std::string prefix = c.name.empty() ? "" : escape(c.name) + ": ";
        if (c.lag_seconds)
          lag = prefix + fmt::format("{:.3f} s{}", *c.lag_seconds, c.lag_from_engine ? " (engine)" : "");
        if (c.lag_bytes) bytes = prefix + human_bytes(*c.lag_bytes);
        if (c.connected) connected = *c.connected ? "yes" : "no";
        if (c.applying) applying = *c.applying ? "yes" : "no";
      }
      html += fmt::format(
          "<tr class=\"{0}\" data-node=\"{1}\"><td>{1}</td><td>{2}</td><td>{0}</td><td>{3}</td>"
          "<td>{4}</td><td>{5}</td><td>{6}</td><td>{7}</td></tr>",
          health_name(n.state), escape(n.name), role_name(n.role), lag, bytes, connected,
          applying, n.up ? "" : escape(std::string(error_reason(n.error)) + ": " + n.error_message));
    }
    html += "</tbody></table>";
  }
  html += "</body></html>\n";
  return html;
}

}  // namespace lagwatch
