#!/usr/bin/env python3
"""Writes lagwatch's Grafana dashboards (dashboards/*.json) from the definitions below.

    python3 dashboards/generate.py           # rewrite the JSON files
    python3 dashboards/generate.py --check   # exit 1 if a JSON file differs from this script

Edit the panels here, run it, commit both. The JSON works imported in the UI and provisioned
from files alike: every panel and query uses the `datasource` template variable (no
`__inputs`, which only UI import honours), ids are null and uids stable. Every query is sent
to a real Prometheus scraping lagwatch by tests/integration/test_stack.py, which fails on
a query that returns nothing or names a metric lagwatch does not export.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DS = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSION = 38  # Grafana 10.0 (10.1–10.4 migrate it on load)

# Default thresholds of lagwatch ([defaults] thresholds): fixed lines on fleet-wide panels,
# where one replica's own thresholds (lagwatch_threshold_*) cannot be drawn for all.
LAG_WARNING_S, LAG_CRITICAL_S = 1, 5
LAG_WARNING_B, LAG_CRITICAL_B = 10 * 1024 ** 2, 100 * 1024 ** 2

GREEN, ORANGE, RED, GREY, BLUE, PURPLE = "green", "orange", "red", "text", "blue", "purple"

# lagwatch_replica_state as one number per replica (0 ok, 1 warning, 2 critical, 3 unknown):
# the stateset has one series per state, so the non-ok ones are weighted and added up.
STATE_CODE = (
    'lagwatch_replica_state{{{sel}, state="warning"}}'
    ' + ignoring(state) 2 * lagwatch_replica_state{{{sel}, state="critical"}}'
    ' + ignoring(state) 3 * lagwatch_replica_state{{{sel}, state="unknown"}}')
STATE_MAPPING = {"0": ("ok", GREEN), "1": ("warning", ORANGE), "2": ("critical", RED),
                 "3": ("unknown", GREY)}
# lagwatch_node_role likewise: 2 primary, 1 replica, 0 unknown.
ROLE_CODE = ('2 * lagwatch_node_role{{{sel}, role="primary"}}'
             ' + ignoring(role) lagwatch_node_role{{{sel}, role="replica"}}')
ROLE_MAPPING = {"2": ("primary", PURPLE), "1": ("replica", BLUE), "0": ("unknown", GREY)}


# ------------------------------------------------------------------ building blocks

def steps(*pairs):
    """Threshold steps: ("green", None), ("orange", 1), ... (None: the base step)."""
    return {"mode": "absolute",
            "steps": [{"color": c, "value": v} for c, v in pairs]}


def value_mappings(mapping, ranges=()):
    """{"0": (text, colour)} and [(from, to, text, colour)] as Grafana value mappings."""
    out = []
    if mapping:
        out.append({"type": "value", "options": {
            k: {"text": t, "color": c, "index": i} for i, (k, (t, c)) in enumerate(mapping.items())}})
    for i, (lo, hi, t, c) in enumerate(ranges):
        out.append({"type": "range", "options": {
            "from": lo, "to": hi, "result": {"text": t, "color": c, "index": len(mapping) + i}}})
    return out


def target(expr, legend, ref="A", instant=False, fmt=None):
    t = {"datasource": DS, "editorMode": "code", "expr": expr, "legendFormat": legend,
         "range": not instant, "instant": instant, "refId": ref}
    if fmt:
        t["format"] = fmt
    return t


def color_override(kind, match, color, dashed=False):
    """A fieldConfig override giving series matched by name or regex a fixed colour."""
    props = [{"id": "color", "value": {"mode": "fixed", "fixedColor": color}}]
    if dashed:
        props += [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                  {"id": "custom.fillOpacity", "value": 0}]
    return {"matcher": {"id": kind, "options": match}, "properties": props}


def panel(kind, title, description, targets, unit="short", thresholds=None, mappings=(),
          overrides=(), options=None, custom=None, extra=None, **defaults):
    p = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "color": {"mode": "thresholds"},
                "thresholds": thresholds or steps((GREEN, None)),
                "mappings": list(mappings),
                **({"custom": custom} if custom else {}),
                **defaults,
            },
            "overrides": list(overrides),
        },
        "options": options or {},
    }
    if extra:
        p.update(extra)
    return p


def stat(title, description, targets, unit="short", thresholds=None, mappings=(),
         text_mode="value_and_name", **kw):
    return panel("stat", title, description, targets, unit, thresholds, mappings, options={
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "background", "graphMode": "none", "justifyMode": "auto",
        "orientation": "auto", "textMode": text_mode, "text": {}}, **kw)


def timeseries(title, description, targets, unit, thresholds=None, overrides=(),
               threshold_style="off", legend_calcs=("lastNotNull", "max"), **kw):
    return panel("timeseries", title, description, targets, unit, thresholds, overrides=overrides,
                 options={"legend": {"displayMode": "table", "placement": "bottom",
                                     "showLegend": True, "calcs": list(legend_calcs)},
                          "tooltip": {"mode": "multi", "sort": "desc"}},
                 custom={"drawStyle": "line", "lineWidth": 1, "fillOpacity": 0,
                         "showPoints": "never", "spanNulls": False, "axisSoftMin": 0,
                         "thresholdsStyle": {"mode": threshold_style}},
                 color={"mode": "palette-classic"}, **kw)


def state_timeline(title, description, targets, mapping, thresholds=None):
    return panel("state-timeline", title, description, targets, "short",
                 thresholds or steps((GREY, None)), value_mappings(mapping),
                 options={"mergeValues": True, "showValue": "auto", "alignValue": "left",
                          "rowHeight": 0.85,
                          "legend": {"displayMode": "list", "placement": "bottom",
                                     "showLegend": True},
                          "tooltip": {"mode": "single", "sort": "none"}},
                 custom={"fillOpacity": 75, "lineWidth": 0})


def layout(rows):
    """Places rows of (width, height, panel) left to right, top to bottom; numbers the ids."""
    panels, y, pid = [], 0, 1
    for row in rows:
        x = 0
        height = max(h for _, h, _ in row)
        for w, h, p in row:
            p = {"id": pid, "gridPos": {"h": h, "w": w, "x": x, "y": y}, **p}
            panels.append(p)
            pid += 1
            x += w
        assert x <= 24, "row wider than 24 columns: %s" % [p["title"] for _, _, p in row]
        y += height
    return panels


def datasource_variable():
    return {"name": "datasource", "label": "Data source", "type": "datasource",
            "query": "prometheus", "regex": "", "current": {}, "hide": 0, "includeAll": False,
            "multi": False, "options": [], "refresh": 1, "skipUrlSync": False}


def query_variable(name, label, query, multi=True, include_all=True):
    v = {"name": name, "label": label, "type": "query", "datasource": DS,
         "definition": query, "query": query, "regex": "", "refresh": 2, "sort": 1,
         "hide": 0, "multi": multi, "includeAll": include_all, "options": [],
         "skipUrlSync": False}
    v["current"] = ({"selected": True, "text": ["All"], "value": ["$__all"]}
                    if include_all else {})
    return v


CLUSTER_VARIABLE = 'label_values(lagwatch_node_up, cluster)'
NODE_VARIABLE = 'label_values(lagwatch_node_up{cluster=~"$cluster"}, node)'


def dashboard(uid, title, description, variables, panels, annotations=()):
    return {
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
        ] + [{"type": "panel", "id": t, "name": t, "version": ""}
             for t in sorted({p["type"] for p in panels})],
        "id": None,
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["lagwatch"],
        "editable": True,
        "graphTooltip": 1,
        "timezone": "",
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "refresh": "10s",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "weekStart": "",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "links": [{"type": "dashboards", "tags": ["lagwatch"], "asDropdown": False,
                   "includeVars": False, "keepTime": True, "targetBlank": False,
                   "title": "lagwatch dashboards", "icon": "external link", "tooltip": "",
                   "url": ""}],
        "templating": {"list": variables},
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard"}] + list(annotations)},
        "panels": panels,
    }


# ------------------------------------------------------------------ Replication overview

def overview():
    c = 'cluster=~"$cluster"'
    # Per-node metrics also follow the node variable; cluster-level ones (primaries, routable
    # count) have no node label.
    cn = 'cluster=~"$cluster", node=~"$node"'
    primaries = stat(
        "Writable primaries",
        "Writable primaries lagwatch saw in each cluster's last cycle (lagwatch_cluster_primaries). "
        "1 is healthy. 0: no primary, writes fail (alert LagwatchNoPrimary). 2 or more: "
        "split-brain, writes can land on both and diverge (alert LagwatchSplitBrain).",
        [target('max by (cluster) (lagwatch_cluster_primaries{%s})' % c, "{{cluster}}")],
        thresholds=steps((RED, None), (GREEN, 1), (RED, 2)),
        mappings=value_mappings({"0": ("no primary", RED), "1": ("1 primary", GREEN)},
                                [(2, 1e9, "split-brain", RED)]))
    routable = stat(
        "Routable replicas",
        "Replicas in each cluster's lag-aware replica list now "
        "(lagwatch_cluster_routable_replicas): the ones routers send reads to. 0 means reads "
        "go to the primary (fallback_to_primary) or fail (alert LagwatchNoRoutableReplica).",
        [target('max by (cluster) (lagwatch_cluster_routable_replicas{%s})' % c, "{{cluster}}")],
        thresholds=steps((RED, None), (GREEN, 1)))
    worst_lag = stat(
        "Worst lag",
        "The largest measured lag (lagwatch_replica_lag_seconds) among each cluster's "
        "replicas. Colours use lagwatch's default thresholds (warning %g s, critical %g s); "
        "replicas with their own thresholds are drawn against them in the Cluster detail "
        "dashboard. No value: no replica's lag is known." % (LAG_WARNING_S, LAG_CRITICAL_S),
        [target('max by (cluster) (lagwatch_replica_lag_seconds{%s})' % cn, "{{cluster}}")],
        unit="s", thresholds=steps((GREEN, None), (ORANGE, LAG_WARNING_S), (RED, LAG_CRITICAL_S)),
        decimals=2)
    nodes_down = stat(
        "Nodes down",
        "Nodes of each cluster whose last collection failed (lagwatch_node_up == 0): down, "
        "unreachable, hung or refusing lagwatch's login. With several lagwatch instances a node "
        "counts only when none of them reaches it. Why: lagwatch dashboard, errors by reason.",
        [target('sum by (cluster) (1 - max by (cluster, node) (lagwatch_node_up{%s}))' % cn,
                "{{cluster}}")],
        thresholds=steps((GREEN, None), (RED, 1)))
    by_state = stat(
        "Replicas by state",
        "Replicas of the selected clusters in each health state after thresholds "
        "(lagwatch_replica_state): ok, warning and critical by lag or a stopped stream, "
        "unknown when unreachable or when the lag cannot be measured.",
        [target('sum by (state) (max by (cluster, node, state) (lagwatch_replica_state{%s}))' % cn,
                "{{state}}")],
        thresholds=steps((GREY, None)),
        overrides=[color_override("byName", "ok", GREEN), color_override("byName", "warning", ORANGE),
                   color_override("byName", "critical", RED), color_override("byName", "unknown", GREY)])
    worst_bytes = stat(
        "Worst lag in bytes",
        "The most WAL/binlog not yet replayed by any replica of each cluster "
        "(lagwatch_replica_lag_bytes). Colours use lagwatch's default thresholds (warning "
        "10 MiB, critical 100 MiB).",
        [target('max by (cluster) (lagwatch_replica_lag_bytes{%s})' % cn, "{{cluster}}")],
        unit="bytes", thresholds=steps((GREEN, None), (ORANGE, LAG_WARNING_B), (RED, LAG_CRITICAL_B)))
    disconnected = stat(
        "Disconnected replicas",
        "Replication streams with no connection to their primary (lagwatch_replica_connected "
        "== 0: WAL receiver not streaming, IO thread not running). Their lag can only grow "
        "(alert LagwatchReplicaDisconnected).",
        [target('sum by (cluster) (1 - min by (cluster, node, channel) (lagwatch_replica_connected{%s}))' % cn,
                "{{cluster}}")],
        thresholds=steps((GREEN, None), (RED, 1)))
    lag_ts = timeseries(
        "Replica lag",
        "Measured lag of every replica over time (lagwatch_replica_lag_seconds): how long ago "
        "the primary was at the position the replica has replayed, on lagwatch's clock. 0 on "
        "an idle primary; grows 1 s per second while replay is stuck. Dashed lines: the "
        "default thresholds.",
        [target('max by (cluster, node, channel) (lagwatch_replica_lag_seconds{%s})' % cn,
                "{{cluster}} / {{node}} {{channel}}")],
        "s", steps((GREEN, None), (ORANGE, LAG_WARNING_S), (RED, LAG_CRITICAL_S)),
        threshold_style="dashed")
    bytes_ts = timeseries(
        "Replica lag in bytes",
        "Bytes of the primary's WAL/binlog each replica has not replayed yet "
        "(lagwatch_replica_lag_bytes), both positions sampled in the same cycle. Dashed "
        "lines: the default thresholds.",
        [target('max by (cluster, node, channel) (lagwatch_replica_lag_bytes{%s})' % cn,
                "{{cluster}} / {{node}} {{channel}}")],
        "bytes", steps((GREEN, None), (ORANGE, LAG_WARNING_B), (RED, LAG_CRITICAL_B)),
        threshold_style="dashed")
    by = "max by (cluster, node, engine)"
    table = panel(
        "table", "Replicas",
        "Every replica now, sorted by lag (click a header to sort by another column; click a "
        "cluster for its detail dashboard). State is lagwatch's health after thresholds; "
        "Routable says whether routers send it reads; Connected and Applying are the "
        "replication stream and replay/SQL thread.",
        [target('%s (lagwatch_replica_lag_seconds{%s})' % (by, cn), "", "A", True, "table"),
         target('%s (lagwatch_replica_lag_bytes{%s})' % (by, cn), "", "B", True, "table"),
         target('%s (%s)' % (by, STATE_CODE.format(sel=cn)), "", "C", True, "table"),
         target('%s (lagwatch_replica_routable{%s})' % (by, cn), "", "D", True, "table"),
         target('min by (cluster, node, engine) (lagwatch_replica_connected{%s})' % cn, "", "E", True, "table"),
         target('min by (cluster, node, engine) (lagwatch_replica_applying{%s})' % cn, "", "F", True, "table")],
        thresholds=steps((GREEN, None)),
        custom={"align": "auto", "cellOptions": {"type": "auto"}, "inspect": False},
        options={"showHeader": True, "cellHeight": "sm",
                 "footer": {"show": False, "reducer": ["sum"], "countRows": False, "fields": ""},
                 "sortBy": [{"displayName": "Lag", "desc": True}]},
        overrides=[
            {"matcher": {"id": "byName", "options": "Lag"}, "properties": [
                {"id": "unit", "value": "s"}, {"id": "decimals", "value": 3},
                {"id": "thresholds", "value": steps((GREEN, None), (ORANGE, LAG_WARNING_S), (RED, LAG_CRITICAL_S))},
                {"id": "custom.cellOptions", "value": {"type": "color-text"}}]},
            {"matcher": {"id": "byName", "options": "Lag bytes"}, "properties": [
                {"id": "unit", "value": "bytes"},
                {"id": "thresholds", "value": steps((GREEN, None), (ORANGE, LAG_WARNING_B), (RED, LAG_CRITICAL_B))},
                {"id": "custom.cellOptions", "value": {"type": "color-text"}}]},
            {"matcher": {"id": "byName", "options": "State"}, "properties": [
                {"id": "mappings", "value": value_mappings(STATE_MAPPING)},
                {"id": "custom.cellOptions", "value": {"type": "color-background", "mode": "basic"}}]},
            {"matcher": {"id": "byName", "options": "Routable"}, "properties": [
                {"id": "mappings", "value": value_mappings({"1": ("yes", GREEN), "0": ("no", RED)})},
                {"id": "custom.cellOptions", "value": {"type": "color-text"}}]},
            {"matcher": {"id": "byName", "options": "Connected"}, "properties": [
                {"id": "mappings", "value": value_mappings({"1": ("yes", GREEN), "0": ("no", RED)})},
                {"id": "custom.cellOptions", "value": {"type": "color-text"}}]},
            {"matcher": {"id": "byName", "options": "Applying"}, "properties": [
                {"id": "mappings", "value": value_mappings({"1": ("yes", GREEN), "0": ("no", ORANGE)})},
                {"id": "custom.cellOptions", "value": {"type": "color-text"}}]},
            {"matcher": {"id": "byName", "options": "Cluster"}, "properties": [
                {"id": "links", "value": [{
                    "title": "Cluster detail",
                    "url": "/d/lagwatch-cluster/lagwatch-cluster-detail?${datasource:queryparam}"
                           "&var-cluster=${__value.raw}&${__url_time_range}"}]}]},
        ],
        extra={"transformations": [
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {
                "excludeByName": {"Time": True},
                "indexByName": {"cluster": 0, "node": 1, "engine": 2, "Value #C": 3,
                                "Value #A": 4, "Value #B": 5, "Value #D": 6, "Value #E": 7,
                                "Value #F": 8},
                "renameByName": {"cluster": "Cluster", "node": "Node", "engine": "Engine",
                                 "Value #A": "Lag", "Value #B": "Lag bytes", "Value #C": "State",
                                 "Value #D": "Routable", "Value #E": "Connected",
                                 "Value #F": "Applying"}}}]})
    return dashboard(
        "lagwatch-overview", "lagwatch / Replication overview",
        "Every cluster lagwatch watches at a glance: primaries, routable replicas, worst lag, "
        "replica states and a table of every replica.",
        [datasource_variable(),
         query_variable("cluster", "Cluster", CLUSTER_VARIABLE),
         query_variable("node", "Node", NODE_VARIABLE)],
        layout([
            [(6, 4, primaries), (6, 4, routable), (6, 4, worst_lag), (6, 4, nodes_down)],
            [(12, 4, by_state), (6, 4, worst_bytes), (6, 4, disconnected)],
            [(12, 8, lag_ts), (12, 8, bytes_ts)],
            [(24, 10, table)],
        ]))


# ------------------------------------------------------------------ Cluster detail

def cluster_detail():
    c = 'cluster=~"$cluster"'
    cn = 'cluster=~"$cluster", node=~"$node"'

    def lag_panel(title, description, metric, threshold_metric, unit, warn, crit):
        return timeseries(
            title, description,
            [target('max by (node, channel) (%s{%s})' % (metric, cn), "{{node}} {{channel}}", "A"),
             target('max by (node) (%s{%s, severity="warning"})' % (threshold_metric, cn),
                    "{{node}} warning threshold", "B"),
             target('max by (node) (%s{%s, severity="critical"})' % (threshold_metric, cn),
                    "{{node}} critical threshold", "C")],
            unit, steps((GREEN, None), (ORANGE, warn), (RED, crit)),
            overrides=[color_override("byRegexp", "/.* warning threshold$/", ORANGE, dashed=True),
                       color_override("byRegexp", "/.* critical threshold$/", RED, dashed=True)])

    primaries = stat(
        "Writable primaries",
        "Writable primaries in the cluster's last cycle (lagwatch_cluster_primaries): 1 is "
        "healthy, 0 no primary, 2 or more split-brain.",
        [target('max by (cluster) (lagwatch_cluster_primaries{%s})' % c, "{{cluster}}")],
        thresholds=steps((RED, None), (GREEN, 1), (RED, 2)), text_mode="value",
        mappings=value_mappings({"0": ("no primary", RED), "1": ("1 primary", GREEN)},
                                [(2, 1e9, "split-brain", RED)]))
    routable = stat(
        "Routable replicas",
        "Replicas in the cluster's replica list now (lagwatch_cluster_routable_replicas).",
        [target('max by (cluster) (lagwatch_cluster_routable_replicas{%s})' % c, "{{cluster}}")],
        thresholds=steps((RED, None), (GREEN, 1)), text_mode="value")
    role_changes = stat(
        "Role changes",
        "How often each node became or stopped being the writable primary in the time range "
        "(changes of lagwatch_node_role{role=\"primary\"}): failovers, switchovers, promotions.",
        [target('max by (node) (changes(lagwatch_node_role{%s, role="primary"}[$__range]))' % cn,
                "{{node}}")],
        thresholds=steps((GREEN, None), (ORANGE, 1)))
    nodes_down = stat(
        "Nodes down",
        "Selected nodes whose last collection failed (lagwatch_node_up == 0).",
        [target('sum(1 - max by (node) (lagwatch_node_up{%s}))' % cn, "down")],
        thresholds=steps((GREEN, None), (RED, 1)), text_mode="value")
    lag_s = lag_panel(
        "Lag", "Measured lag per replica (lagwatch_replica_lag_seconds) with each replica's "
        "warning and critical thresholds in force (lagwatch_threshold_seconds, dashed), per-node "
        "overrides included. A gap: the lag was unknown (node unreachable).",
        "lagwatch_replica_lag_seconds", "lagwatch_threshold_seconds", "s", LAG_WARNING_S, LAG_CRITICAL_S)
    lag_b = lag_panel(
        "Lag in bytes", "WAL/binlog bytes not yet replayed per replica (lagwatch_replica_lag_bytes) "
        "with each replica's thresholds in force (lagwatch_threshold_bytes, dashed).",
        "lagwatch_replica_lag_bytes", "lagwatch_threshold_bytes", "bytes", LAG_WARNING_B, LAG_CRITICAL_B)
    reported = timeseries(
        "Reported vs measured lag",
        "lagwatch's measured lag (solid) next to the engine's own figure (dashed: PostgreSQL "
        "now() - pg_last_xact_replay_timestamp(), MySQL Seconds_Behind_Source). They part "
        "where the engine's figure is known to lie: it climbs on an idle primary, is whole "
        "seconds, reads 0 while the IO thread is behind and is absent while a thread is stopped.",
        [target('max by (node, channel) (lagwatch_replica_lag_seconds{%s})' % cn,
                "{{node}} {{channel}} measured", "A"),
         target('max by (node, channel) (lagwatch_replica_reported_lag_seconds{%s})' % cn,
                "{{node}} {{channel}} reported by the engine", "B")],
        "s", steps((GREEN, None), (ORANGE, LAG_WARNING_S), (RED, LAG_CRITICAL_S)),
        overrides=[{"matcher": {"id": "byRegexp", "options": "/.* reported by the engine$/"},
                    "properties": [{"id": "custom.lineStyle",
                                    "value": {"fill": "dash", "dash": [10, 10]}}]}])
    source = state_timeline(
        "Lag source",
        "Where each replica's lag figure comes from (lagwatch_replica_lag_fallback): measured "
        "from positions on lagwatch's clock, or the engine's own figure while the primary "
        "cannot be read.",
        [target('max by (node, channel) (lagwatch_replica_lag_fallback{%s})' % cn, "{{node}} {{channel}}")],
        {"0": ("measured", GREEN), "1": ("engine figure", ORANGE)})
    connected = state_timeline(
        "Connected",
        "Whether each replica's stream from its primary is up (lagwatch_replica_connected): "
        "the WAL receiver streaming (PostgreSQL), the IO thread running (MySQL/MariaDB).",
        [target('min by (node, channel) (lagwatch_replica_connected{%s})' % cn, "{{node}} {{channel}}")],
        {"1": ("streaming", GREEN), "0": ("disconnected", RED)})
    applying = state_timeline(
        "Applying",
        "Whether each replica applies what it receives (lagwatch_replica_applying): replay "
        "not paused (PostgreSQL), the SQL thread running (MySQL/MariaDB).",
        [target('min by (node, channel) (lagwatch_replica_applying{%s})' % cn, "{{node}} {{channel}}")],
        {"1": ("applying", GREEN), "0": ("paused / stopped", ORANGE)})
    state = state_timeline(
        "Health state",
        "lagwatch's health state of each replica after thresholds (lagwatch_replica_state): "
        "ok, warning, critical (lag past a threshold, or a stopped stream), unknown "
        "(unreachable or lag not measurable).",
        [target('max by (node) (%s)' % STATE_CODE.format(sel=cn), "{{node}}")],
        STATE_MAPPING)
    up = state_timeline(
        "Reachable",
        "Whether lagwatch's last collection of each node succeeded (lagwatch_node_up).",
        [target('min by (node) (lagwatch_node_up{%s})' % cn, "{{node}}")],
        {"1": ("up", GREEN), "0": ("down", RED)})
    role = state_timeline(
        "Role",
        "Each node's observed role (lagwatch_node_role): roles are asked each cycle, not "
        "configured, so a promotion shows here as a replica turning primary.",
        [target('max by (node) (%s)' % ROLE_CODE.format(sel=cn), "{{node}}")],
        ROLE_MAPPING)
    membership = state_timeline(
        "Routable membership",
        "Whether each replica is in the lag-aware replica list routers read "
        "(lagwatch_replica_routable; degraded keepers included). It leaves after `fall` bad "
        "samples and comes back after `rise` good ones.",
        [target('max by (node) (lagwatch_replica_routable{%s})' % cn, "{{node}}")],
        {"1": ("listed", GREEN), "0": ("not listed", RED)})
    counts = timeseries(
        "Routable replicas and primaries",
        "Replicas in the replica list (lagwatch_cluster_routable_replicas) and writable "
        "primaries seen (lagwatch_cluster_primaries) over time.",
        [target('max by (cluster) (lagwatch_cluster_routable_replicas{%s})' % c, "routable replicas", "A"),
         target('max by (cluster) (lagwatch_cluster_primaries{%s})' % c, "writable primaries", "B")],
        "short", steps((GREEN, None)), legend_calcs=("lastNotNull", "min", "max"), decimals=0)
    role_annotation = {
        "name": "Role changes", "enable": True, "hide": False, "iconColor": "purple",
        "datasource": DS,
        "expr": 'max by (node) (changes(lagwatch_node_role{cluster=~"$cluster", role="primary"}[1m])) > 0',
        "step": "30s", "titleFormat": "role change", "textFormat": "{{node}} gained or lost the primary role",
        "tagKeys": "node", "useValueForTime": False}
    return dashboard(
        "lagwatch-cluster", "lagwatch / Cluster detail",
        "One cluster in depth: lag in seconds and bytes against each replica's thresholds, "
        "measured against reported lag, stream and replay state, roles and routing.",
        [datasource_variable(),
         query_variable("cluster", "Cluster", CLUSTER_VARIABLE, multi=False, include_all=False),
         query_variable("node", "Node", NODE_VARIABLE)],
        layout([
            [(6, 4, primaries), (6, 4, routable), (6, 4, role_changes), (6, 4, nodes_down)],
            [(12, 9, lag_s), (12, 9, lag_b)],
            [(12, 8, reported), (12, 8, source)],
            [(12, 7, connected), (12, 7, applying)],
            [(12, 7, state), (12, 7, up)],
            [(12, 7, role), (12, 7, membership)],
            [(24, 7, counts)],
        ]),
        annotations=[role_annotation])


# ------------------------------------------------------------------ lagwatch itself

def lagwatch_self():
    cn = 'cluster=~"$cluster", node=~"$node"'
    job = 'job=~".*lagwatch.*"'
    outcome_colours = [color_override("byRegexp", "/.*success$/", GREEN),
                       color_override("byRegexp", "/.*retry$/", ORANGE),
                       color_override("byRegexp", "/.*fail.*/", RED)]
    scrape = stat(
        "Scrape health",
        "Whether Prometheus' last scrape of each lagwatch instance succeeded (up). Down for "
        "1m fires LagwatchDown; the scrape job's name must contain \"lagwatch\".",
        [target('up{%s}' % job, "{{instance}}")],
        thresholds=steps((RED, None), (GREEN, 1)),
        mappings=value_mappings({"1": ("up", GREEN), "0": ("down", RED)}))
    cycle_age = stat(
        "Cycle age",
        "Seconds since each cluster's last collection cycle was evaluated "
        "(time() - lagwatch_cluster_last_cycle_timestamp_seconds). It should stay near the "
        "interval; beyond 30 s lagwatch's figures are frozen (LagwatchCollectionStale).",
        [target('max by (cluster) (time() - lagwatch_cluster_last_cycle_timestamp_seconds{cluster=~"$cluster"})',
                "{{cluster}}")],
        unit="s", thresholds=steps((GREEN, None), (ORANGE, 5), (RED, 30)), decimals=1)
    errors_total = stat(
        "Collection errors",
        "Failed collections of the selected nodes in the time range, all reasons "
        "(lagwatch_collection_errors_total).",
        [target('sum(increase(lagwatch_collection_errors_total{%s}[$__range]))' % cn, "errors")],
        thresholds=steps((GREEN, None), (ORANGE, 1)), text_mode="value", decimals=0)
    version = stat(
        "Version",
        "lagwatch version and source revision of each running instance (lagwatch_build_info); "
        "two lines mean instances run different builds.",
        [target('count by (version, revision) (lagwatch_build_info)', "{{version}} ({{revision}})")],
        thresholds=steps((BLUE, None)), text_mode="name")
    heatmap = panel(
        "heatmap", "Collection duration",
        "How long collections of the selected nodes took (lagwatch_collection_duration_seconds "
        "histogram), per bucket. Collections near the configured timeout are about to fail.",
        [target('sum by (le) (rate(lagwatch_collection_duration_seconds_bucket{%s}[$__rate_interval]))' % cn,
                "{{le}}", fmt="heatmap")],
        unit="s",
        custom={"hideFrom": {"legend": False, "tooltip": False, "viz": False},
                "scaleDistribution": {"type": "linear"}},
        options={"calculate": False, "cellGap": 1,
                 "color": {"mode": "scheme", "scheme": "Oranges", "fill": "dark-orange",
                           "scale": "exponential", "exponent": 0.5, "steps": 64, "reverse": False},
                 "yAxis": {"axisPlacement": "left", "unit": "s", "reverse": False},
                 "rowsFrame": {"layout": "auto"}, "cellValues": {"unit": "cps"},
                 "filterValues": {"le": 1e-09}, "showValue": "never",
                 "tooltip": {"show": True, "yHistogram": False}, "legend": {"show": True},
                 "exemplars": {"color": "rgba(255,0,255,0.7)"}})
    quantiles = timeseries(
        "Collection duration quantiles",
        "99th and 50th percentile of collection time per node, from the "
        "lagwatch_collection_duration_seconds histogram. Dashed lines: 500 ms and the default "
        "800 ms timeout.",
        [target('histogram_quantile(0.99, sum by (cluster, node, le) (rate(lagwatch_collection_duration_seconds_bucket{%s}[$__rate_interval])))' % cn,
                "{{cluster}} / {{node}} p99", "A"),
         target('histogram_quantile(0.5, sum by (cluster, node, le) (rate(lagwatch_collection_duration_seconds_bucket{%s}[$__rate_interval])))' % cn,
                "{{cluster}} / {{node}} p50", "B")],
        "s", steps((GREEN, None), (ORANGE, 0.5), (RED, 0.8)), threshold_style="dashed")
    errors = timeseries(
        "Collection errors by reason",
        "Failed collections per second by node and reason (lagwatch_collection_errors_total): "
        "timeout, connect, query, auth. Auth errors need a credentials fix; timeouts a "
        "look at the database's load or the network.",
        [target('sum by (cluster, node, reason) (rate(lagwatch_collection_errors_total{%s}[$__rate_interval]))' % cn,
                "{{cluster}} / {{node}} {{reason}}")],
        "cps", steps((GREEN, None), (RED, 0.001)))
    errors_by_reason = panel(
        "bargauge", "Errors by reason in the time range",
        "Failed collections of the selected nodes in the time range, by reason.",
        [target('sum by (reason) (increase(lagwatch_collection_errors_total{%s}[$__range]))' % cn,
                "{{reason}}")],
        thresholds=steps((GREEN, None), (ORANGE, 1), (RED, 10)), decimals=0, min=0,
        options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                 "orientation": "horizontal", "displayMode": "basic", "showUnfilled": True,
                 "valueMode": "color", "namePlacement": "auto", "sizing": "auto",
                 "minVizHeight": 10, "minVizWidth": 0})
    pushes = timeseries(
        "Router pushes by outcome",
        "Replica-list pushes to each router per second by outcome "
        "(lagwatch_router_pushes_total): success (2xx), retry (no answer, 408, 429, 5xx; "
        "retried with backoff), failure (refused; not retried until the list changes or the "
        "keepalive). Empty without [[routing.push]] targets.",
        [target('sum by (router, result) (rate(lagwatch_router_pushes_total[$__rate_interval]))',
                "{{router}} {{result}}")],
        "cps", steps((GREEN, None)), overrides=outcome_colours)
    notifications = timeseries(
        "Notifications by outcome",
        "Alert notifications to each receiver (Slack, PagerDuty, webhook) per second by "
        "outcome (lagwatch_notifications_total). Failures mean people are not being paged. "
        "Empty without [[alerting.receiver]] entries.",
        [target('sum by (receiver, result) (rate(lagwatch_notifications_total[$__rate_interval]))',
                "{{receiver}} {{result}}")],
        "cps", steps((GREEN, None)), overrides=outcome_colours)
    scrape_duration = timeseries(
        "Scrape duration",
        "How long Prometheus' scrapes of lagwatch take (scrape_duration_seconds). lagwatch "
        "answers /metrics from memory, so this stays small even while databases hang.",
        [target('scrape_duration_seconds{%s}' % job, "{{instance}}")],
        "s", steps((GREEN, None), (ORANGE, 1)))
    samples = timeseries(
        "Samples per scrape",
        "Series in each scrape of lagwatch (scrape_samples_scraped): grows with nodes, "
        "channels and routers; a sudden drop means clusters went missing.",
        [target('scrape_samples_scraped{%s}' % job, "{{instance}}")],
        "short", steps((GREEN, None)), decimals=0)
    return dashboard(
        "lagwatch-self", "lagwatch / lagwatch itself",
        "Is lagwatch itself healthy: scrapes, collection cycles and their duration, "
        "collection errors by reason, router pushes and alert notifications.",
        [datasource_variable(),
         query_variable("cluster", "Cluster", CLUSTER_VARIABLE),
         query_variable("node", "Node", NODE_VARIABLE)],
        layout([
            [(6, 4, scrape), (6, 4, cycle_age), (6, 4, errors_total), (6, 4, version)],
            [(12, 9, heatmap), (12, 9, quantiles)],
            [(12, 8, errors), (12, 8, errors_by_reason)],
            [(12, 8, pushes), (12, 8, notifications)],
            [(12, 7, scrape_duration), (12, 7, samples)],
        ]))


DASHBOARDS = {
    "lagwatch-overview.json": overview,
    "lagwatch-cluster.json": cluster_detail,
    "lagwatch-self.json": lagwatch_self,
}


def render(build):
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for name, build in DASHBOARDS.items():
        path = os.path.join(HERE, name)
        text = render(build)
        try:
            with open(path, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current == text:
            continue
        if check:
            stale.append(name)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            print("wrote dashboards/%s" % name)
    if stale:
        print("out of date (run python3 dashboards/generate.py): %s" % ", ".join(stale),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
