// Status page (see status_page.h): server-rendered HTML from snapshots, one inline style and
// one inline script, nothing fetched from elsewhere.
#include "status_page.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>

#include "api.h"

namespace lagwatch {
namespace {

std::string escape(std::string_view s) {
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

constexpr const char* kNone = "\u2014";  // an em dash: not applicable or not known

// "0.123 s", "12.3 s", "4 m 05 s", "2 h 03 m", "3 d 04 h": precise when small, short when large.
std::string human_seconds(double s) {
  if (s < 10) return fmt::format("{:.3f} s", s);
  if (s < 60) return fmt::format("{:.1f} s", s);
  auto whole = static_cast<long long>(std::llround(s));
  if (whole < 3600) return fmt::format("{} m {:02} s", whole / 60, whole % 60);
  if (whole < 86400) return fmt::format("{} h {:02} m", whole / 3600, whole % 3600 / 60);
  return fmt::format("{} d {:02} h", whole / 86400, whole % 86400 / 3600);
}

std::string human_bytes(std::uint64_t b) {
  constexpr std::array<const char*, 5> kUnits = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  std::size_t u = 0;
  while (v >= 1024 && u + 1 < kUnits.size()) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", b) : fmt::format("{:.1f} {}", v, kUnits[u]);
}

std::string yes_no(const std::optional<bool>& v) {
  if (!v) return kNone;
  return *v ? "yes" : "no";
}

// Colours carry meaning only together with the state's name, never alone.
constexpr const char* kStyle = R"css(
:root{color-scheme:light dark;--fg:#1d2127;--muted:#5c636d;--bg:#fff;--line:#d8dce2;
--ok:#176b30;--ok-bg:#dcf4e2;--warning:#7a4f00;--warning-bg:#ffefbf;--critical:#9c0d24;
--critical-bg:#fbd6dc;--unknown:#444c57;--unknown-bg:#e4e7eb}
@media (prefers-color-scheme:dark){:root{--fg:#e4e7eb;--muted:#a2a9b3;--bg:#15171b;
--line:#30353d;--ok:#86e3a5;--ok-bg:#133c22;--warning:#ffd57e;--warning-bg:#47380d;
--critical:#ff9eab;--critical-bg:#531622;--unknown:#c8cdd5;--unknown-bg:#2e333a}}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
margin:0 auto;max-width:84rem;padding:1rem;color:var(--fg);background:var(--bg)}
h1{font-size:1.4rem;margin:0}
h2{font-size:1.15rem;margin:0;display:inline;margin-right:.4rem}
a{color:inherit}
.meta{color:var(--muted);font-size:.85rem;margin:.25rem 0 .6rem}
section{margin:1.6rem 0}
.badge{display:inline-block;padding:0 .55rem;border-radius:1rem;font-size:.8rem;
font-weight:600;white-space:nowrap}
.badge.s-ok{color:var(--ok);background:var(--ok-bg)}
.badge.s-warning{color:var(--warning);background:var(--warning-bg)}
.badge.s-critical{color:var(--critical);background:var(--critical-bg)}
.badge.s-unknown{color:var(--unknown);background:var(--unknown-bg)}
tr.s-warning{background:var(--warning-bg)}
tr.s-critical{background:var(--critical-bg)}
tr.s-warning .badge,tr.s-critical .badge{background:var(--bg)}
.alert{color:var(--critical);font-weight:600;margin:.3rem 0}
.wrap{overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid var(--line);
vertical-align:top}
th{font-size:.75rem;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);
font-weight:600;white-space:nowrap}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.addr{display:block;color:var(--muted);font-size:.8rem}
.line{display:block}
.err{font-size:.85rem;overflow-wrap:anywhere;max-width:28rem}
#stale{display:none;padding:.5rem .8rem;border-radius:.4rem;color:var(--critical);
background:var(--critical-bg);font-weight:600}
body.stale #stale{display:block}
body.stale #fleet{opacity:.55}
footer{margin-top:2rem}
@media (max-width:640px){
body{padding:.6rem}
thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
table,tbody,tr,td{display:block;width:100%}
tr{border:1px solid var(--line);border-radius:.5rem;margin:0 0 .6rem;padding:.3rem 0}
td{display:flex;justify-content:space-between;align-items:baseline;gap:1rem;border:0;
padding:.12rem .7rem;text-align:right;max-width:none}
td::before{content:attr(data-label);color:var(--muted);font-size:.8rem;text-align:left;
flex:none}
td.empty,tr[data-role=primary] td.na{display:none}
.addr{display:inline;margin-left:.5rem}
}
)css";

// Re-fetches this page every 2 s and swaps #fleet in place (no reload, no flicker, scroll
// kept); if lagwatch stops answering, keeps the last figures and says they are stale. It only
// moves nodes lagwatch rendered (and escaped): no text is ever parsed as HTML by the script.
constexpr const char* kScript = R"js(
(function () {
  var failedSince = null;
  function schedule() { setTimeout(tick, 2000); }
  function tick() {
    if (document.hidden) return schedule();
    fetch(location.href, {cache: "no-store", headers: {"Accept": "text/html"}})
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, "text/html");
        var fresh = doc.getElementById("fleet");
        if (!fresh) throw new Error("no #fleet in the answer");
        document.getElementById("fleet").replaceWith(document.adoptNode(fresh));
        document.title = doc.title;
        document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
        failedSince = null;
        document.body.classList.remove("stale");
      })
      .catch(function () {
        if (!failedSince) failedSince = new Date();
        document.getElementById("stale-since").textContent = failedSince.toLocaleTimeString();
        document.body.classList.add("stale");
      })
      .then(schedule, schedule);
  }
  schedule();
})();
)js";

// 'sha256-<base64>' of an inline element's text, for the Content-Security-Policy.
std::string csp_hash(std::string_view text) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_Digest(text.data(), text.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256 failed in OpenSSL");
  std::array<unsigned char, 4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1> b64{};
  int n = EVP_EncodeBlock(b64.data(), digest.data(), static_cast<int>(length));
  return "'sha256-" + std::string(reinterpret_cast<const char*>(b64.data()), static_cast<std::size_t>(n)) + "'";
}

const std::string& content_security_policy() {
  // Nothing but this page's own style and script, and requests back to lagwatch: the page
  // cannot load (or leak to) anything elsewhere, even if some text escaped the escaping.
  static const std::string policy = fmt::format(
      "default-src 'none'; style-src {}; script-src {}; connect-src 'self'; img-src data:; "
      "base-uri 'none'; form-action 'none'",
      csp_hash(kStyle), csp_hash(kScript));
  return policy;
}

// Health states in the order the summary lists them.
constexpr std::array<Health, 4> kStates = {Health::ok, Health::warning, Health::critical,
                                           Health::unknown};

// How bad a state is, for the page title: a node nobody can see is worse than one lagging a
// little, better than one past its critical threshold.
int badness(Health h) {
  switch (h) {
    case Health::ok: return 0;
    case Health::warning: return 1;
    case Health::unknown: return 2;
    case Health::critical: return 3;
  }
  return 2;
}

std::string lag_seconds_cell(const ChannelStatus& c) {
  if (!c.lag_seconds) return "unknown";
  std::string text = (c.lag_beyond_horizon ? "\u2265 " : "") + human_seconds(*c.lag_seconds);
  std::string title = fmt::format("{:.6f} s", *c.lag_seconds);
  if (c.lag_from_engine) {
    text += " (engine)";
    title += ": the engine's own figure, the primary could not be read";
  } else if (c.lag_beyond_horizon) {
    title += " at least: older than lagwatch's position history";
  }
  return fmt::format("<span title=\"{}\">{}</span>", escape(title), escape(text));
}

std::string lag_bytes_cell(const ChannelStatus& c) {
  if (!c.lag_bytes) return "unknown";
  return fmt::format("<span title=\"{} bytes\">{}</span>", *c.lag_bytes, human_bytes(*c.lag_bytes));
}

// One line per replication channel (MySQL multi-source), prefixed with the channel's name.
template <typename Fn>
std::string per_channel(const NodeStatus& n, Fn cell) {
  if (n.channels.empty()) return kNone;
  if (n.channels.size() == 1 && n.channels.front().name.empty()) return cell(n.channels.front());
  std::string out;
  for (const auto& c : n.channels)
    out += fmt::format("<span class=\"line\">{}{}</span>",
                       c.name.empty() ? "" : escape(c.name) + ": ", cell(c));
  return out;
}

std::string last_error(const NodeStatus& n) {
  if (!n.up) {
    std::string text = error_reason(n.error);
    if (!n.error_message.empty()) text += ": " + n.error_message;
    return escape(text);
  }
  std::string out;
  for (const auto& c : n.channels) {
    std::string text = c.last_error;
    if (text.empty() && (c.last_io_errno || c.last_sql_errno))
      text = fmt::format("Last_IO_Errno {}, Last_SQL_Errno {}", c.last_io_errno, c.last_sql_errno);
    if (text.empty()) continue;
    out += fmt::format("<span class=\"line\">{}{}</span>",
                       c.name.empty() ? "" : escape(c.name) + ": ", escape(text));
  }
  return out;
}

// A cell; its content is wrapped so that on a phone, where each row is a card, the label
// (CSS ::before) and the value are the two sides of one line.
std::string cell(const char* label, const std::string& html, const char* cls = "") {
  std::string classes = cls;
  auto add = [&classes](const char* c) { classes += classes.empty() ? c : std::string(" ") + c; };
  if (html.empty()) add("empty");
  if (html == kNone) add("na");
  return fmt::format("<td data-label=\"{}\"{}><div>{}</div></td>", label,
                     classes.empty() ? "" : " class=\"" + classes + "\"", html);
}

std::string node_row(const NodeStatus& n) {
  bool replica = n.is_replica_side();
  const char* state = health_name(n.state);
  std::string routable = replica ? (n.routable ? "yes" : "no") : "-";
  std::string html = fmt::format(
      "<tr class=\"s-{0}\" data-node=\"{1}\" data-role=\"{2}\" data-state=\"{0}\" "
      "data-routable=\"{3}\">",
      state, escape(n.name), role_name(n.role), routable);
  std::string name = fmt::format("<b>{}</b>", escape(n.name));
  if (!n.address.empty()) name += fmt::format("<span class=\"addr\">{}</span>", escape(n.address));
  html += cell("node", name);
  html += cell("role", role_name(n.role));
  html += cell("state", fmt::format("<span class=\"badge s-{0}\">{0}</span>", state));
  html += cell("lag", replica && n.up ? per_channel(n, lag_seconds_cell) : kNone, "num");
  html += cell("lag bytes", replica && n.up ? per_channel(n, lag_bytes_cell) : kNone, "num");
  html += cell("routable", replica ? routable : kNone);
  html += cell("connected",
               replica ? per_channel(n, [](const ChannelStatus& c) { return yes_no(c.connected); })
                       : kNone);
  html += cell("applying",
               replica && n.up
                   ? per_channel(n, [](const ChannelStatus& c) { return yes_no(c.applying); })
                   : kNone);
  html += cell("last error", last_error(n), "err");
  return html + "</tr>";
}

std::string cluster_section(const ClusterSnapshot& s, WallTime now) {
  std::size_t replicas = static_cast<std::size_t>(
      std::count_if(s.nodes.begin(), s.nodes.end(), [](const NodeStatus& n) { return n.is_replica_side(); }));
  double age = std::max(0.0, std::chrono::duration<double>(now - s.evaluated_at).count());
  // The cluster's badge is the worst of its own state (split-brain, no primary) and its
  // nodes': "ok" next to a critical replica would be read as "all is well".
  Health worst = s.state;
  for (const auto& n : s.nodes)
    if (badness(n.state) > badness(worst)) worst = n.state;
  std::string html = fmt::format(
      "<section class=\"cluster\" id=\"cluster-{1}\" data-cluster=\"{1}\" data-state=\"{0}\">"
      "<h2>{1}</h2><span class=\"badge s-{0}\">{0}</span>",
      health_name(worst), escape(s.name));
  std::string meta = escape(s.engine);
  if (!s.primary.empty()) meta += " \u00b7 primary " + escape(s.primary);
  meta += fmt::format(" \u00b7 {} of {} replica{} routable", s.list.replicas.size(), replicas,
                      replicas == 1 ? "" : "s");
  if (s.list.fallback != "none") meta += " \u00b7 fallback: " + escape(s.list.fallback);
  meta += fmt::format(" \u00b7 cycle {}, <time datetime=\"{}\">{} ago</time>", s.cycle,
                      iso8601(s.evaluated_at), human_seconds(age));
  html += "<p class=\"meta\">" + meta + "</p>";
  if (s.primaries > 1)
    html += fmt::format("<p class=\"alert\">Split-brain: {} writable primaries.</p>", s.primaries);
  else if (s.primaries == 0)
    html += "<p class=\"alert\">No writable primary.</p>";
  html +=
      "<div class=\"wrap\"><table><thead><tr><th>node</th><th>role</th><th>state</th>"
      "<th class=\"num\">lag</th><th class=\"num\">lag bytes</th><th>routable</th>"
      "<th>connected</th><th>applying</th><th>last error</th></tr></thead><tbody>";
  for (const auto& n : s.nodes) html += node_row(n);
  return html + "</tbody></table></div></section>";
}

}  // namespace

std::string render_status_page(const std::vector<std::shared_ptr<const ClusterSnapshot>>& snapshots) {
  return render_status_page(snapshots, std::chrono::system_clock::now());
}

std::string render_status_page(const std::vector<std::shared_ptr<const ClusterSnapshot>>& snapshots,
                               WallTime now) {
  // Replica states across the fleet, and the worst state of anything, for the summary and title.
  std::array<std::size_t, kStates.size()> counts{};
  Health worst = Health::ok;
  auto consider = [&worst](Health h) {
    if (badness(h) > badness(worst)) worst = h;
  };
  for (const auto& s : snapshots) {
    consider(s->state);
    for (const auto& n : s->nodes) {
      consider(n.state);
      if (!n.is_replica_side()) continue;
      for (std::size_t i = 0; i < kStates.size(); ++i)
        if (n.state == kStates[i]) ++counts[i];
    }
  }
  std::string summary;
  std::string title = "lagwatch";
  if (!snapshots.empty()) {
    std::size_t replicas = 0;
    std::string parts;
    for (std::size_t i = 0; i < kStates.size(); ++i) {
      replicas += counts[i];
      if (counts[i] == 0) continue;
      parts += fmt::format("{}<span class=\"badge s-{}\">{} {}</span>", parts.empty() ? "" : " ",
                           health_name(kStates[i]), counts[i], health_name(kStates[i]));
    }
    summary = fmt::format("{} cluster{}, {} replica{}: {}", snapshots.size(),
                          snapshots.size() == 1 ? "" : "s", replicas, replicas == 1 ? "" : "s",
                          parts.empty() ? "none" : parts);
    title += std::string(" \u00b7 ") + health_name(worst);
  }
  std::string as_of = iso8601(now);
  std::string html = fmt::format(
      "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">"
      "<noscript><meta http-equiv=\"refresh\" content=\"5\"></noscript>"
      "<meta name=\"color-scheme\" content=\"light dark\">"
      "<title>{}</title><link rel=\"icon\" href=\"data:,\"><style>{}</style></head><body>"
      "<header><h1>lagwatch</h1></header>"
      "<p id=\"stale\" role=\"alert\">lagwatch has not answered since <span id=\"stale-since\"></span>: "
      "the figures below are from then.</p>"
      "<main id=\"fleet\"><p class=\"meta\">As of <time datetime=\"{}\">{} UTC</time>. {}</p>",
      content_security_policy(), escape(title), kStyle, as_of,
      as_of.substr(0, 10) + " " + as_of.substr(11, 8), summary);
  if (snapshots.empty()) html += "<p>No cluster has completed a collection cycle yet.</p>";
  for (const auto& s : snapshots) html += cluster_section(*s, now);
  html += fmt::format(
      "</main><footer class=\"meta\">lagwatch {} \u00b7 <a href=\"metrics\">metrics</a> \u00b7 "
      "<a href=\"api/v1/clusters\">clusters API</a> \u00b7 refreshes every 2 s</footer>"
      "<script>{}</script></body></html>\n",
      escape(LAGWATCH_VERSION), kScript);
  return html;
}

}  // namespace lagwatch
