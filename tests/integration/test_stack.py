"""The monitoring stack end to end: a real Prometheus (Debian's `prometheus`) scrapes a real
lagwatch watching the real PostgreSQL and MariaDB fixtures, loads alerts/lagwatch.rules.yml,
and answers every panel query of every dashboard in dashboards/ with at least one series;
pausing replay on a standby fires the shipped lag alert and resuming clears it.

The dashboards are also checked as files: generated from dashboards/generate.py, portable
between UI import and file provisioning (a `datasource` variable everywhere, id null, stable
uid), described, with units and coloured thresholds.
"""
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import ROOT, Lagwatch, free_port_block, wait_for
from processes import stop_process
from receiver import Receiver

DASHBOARD_DIR = os.path.join(ROOT, "dashboards")
RULES = os.path.join(ROOT, "alerts", "lagwatch.rules.yml")
PROMETHEUS_BIN = os.environ.get("PROMETHEUS_BIN", "/usr/bin/prometheus")
DS = {"type": "prometheus", "uid": "${datasource}"}
UIDS = {"lagwatch-overview.json": "lagwatch-overview", "lagwatch-cluster.json": "lagwatch-cluster",
        "lagwatch-self.json": "lagwatch-self"}

PG_CLUSTER, MY_CLUSTER = "pg-orders", "my-orders"
# (cluster, replica) pairs every query is run for: one PostgreSQL, one MariaDB.
SUBJECTS = [(PG_CLUSTER, "pg2"), (MY_CLUSTER, "db2")]
# Grafana's built-in variables, as Grafana would fill them in for a 5-minute range on a
# 1-second scrape interval.
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__interval_ms": "15000",
            "__range": "5m", "__range_s": "300", "__range_ms": "300000"}
# Series Prometheus makes itself for every target.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
                     "scrape_samples_post_metric_relabeling", "scrape_series_added"}
PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "group_left", "group_right", "on",
                   "ignoring", "by", "without", "inf", "nan"}


# ------------------------------------------------------------------ reading dashboards

def dashboards():
    """{file name: parsed JSON} of every dashboard."""
    out = {}
    for name in sorted(os.listdir(DASHBOARD_DIR)):
        if name.endswith(".json"):
            with open(os.path.join(DASHBOARD_DIR, name), encoding="utf-8") as f:
                out[name] = json.load(f)
    return out


def panels(dashboard):
    """Every panel, those inside collapsed rows included."""
    for p in dashboard["panels"]:
        yield p
        yield from p.get("panels", [])


def queries(dashboard):
    """(panel, target) for every target with a PromQL expression."""
    for p in panels(dashboard):
        for t in p.get("targets", []):
            yield p, t


def substitute(expr, variables):
    """Grafana's variable syntaxes ($v, ${v}, ${v:format}, [[v]]) filled in from `variables`."""
    def value(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in variables:
            pytest.fail("unknown variable $%s in %r" % (name, expr))
        return variables[name]
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]", value, expr)


def strip_strings(expr):
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)


def metric_names(expr):
    """Metric names a PromQL expression selects (functions, keywords, labels and numbers left out)."""
    s = strip_strings(expr)
    s = re.sub(r"\{[^}]*\}", " ", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)  # range and subquery durations
    s = re.sub(r"\b(?:on|ignoring|by|without|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in re.finditer(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)\s*(\()?", s):
        if m.group(2) or m.group(1).lower() in PROMQL_KEYWORDS:
            continue
        names.add(m.group(1))
    return names


# ------------------------------------------------------------------ the dashboards as files

def test_dashboards_are_what_generate_py_writes():
    r = subprocess.run([sys.executable, os.path.join(DASHBOARD_DIR, "generate.py"), "--check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_metric_name_reader_sees_through_promql():
    """Guards the little PromQL reader the live test relies on."""
    expr = ('histogram_quantile(0.99, sum by (cluster, le) (rate(a_bucket{x=~"$c"}[$__rate_interval])))'
            ' + ignoring(state) 2 * b{state="critical"} or on(node) time() - c_total > 1e9')
    assert metric_names(expr) == {"a_bucket", "b", "c_total"}


def test_every_dashboard_works_imported_and_provisioned():
    found = dashboards()
    assert set(found) == set(UIDS), "dashboards/ holds %s" % sorted(found)
    for name, d in found.items():
        where = "dashboards/" + name
        assert d["id"] is None, where
        assert d["uid"] == UIDS[name], where
        assert 36 <= d["schemaVersion"] <= 39, "%s: schemaVersion %s is not Grafana 10's" % (
            where, d["schemaVersion"])
        # __inputs is honoured on UI import only; a provisioned dashboard would keep
        # ${DS_...} unresolved. The datasource variable works for both.
        assert "__inputs" not in d, where
        assert d.get("title") and d.get("description") and "lagwatch" in d["tags"], where
        variables = {v["name"]: v for v in d["templating"]["list"]}
        ds = variables.get("datasource")
        assert ds and ds["type"] == "datasource" and ds["query"] == "prometheus", where
        cluster = variables.get("cluster")
        assert cluster and cluster["query"] == "label_values(lagwatch_node_up, cluster)", where
        for v in variables.values():
            if v["type"] == "query":
                assert v["datasource"] == DS, "%s: variable %s" % (where, v["name"])
                assert v["query"].startswith("label_values(lagwatch_node_up"), (where, v["name"])
        ids = [p["id"] for p in panels(d)]
        assert len(ids) == len(set(ids)), "%s: panel ids repeat: %s" % (where, ids)
        for p in panels(d):
            if p["type"] == "row":
                continue
            what = "%s: panel %r" % (where, p["title"])
            assert p.get("description", "").strip(), what + " has no description"
            assert p["datasource"] == DS, what
            g = p["gridPos"]
            assert g["x"] + g["w"] <= 24 and g["w"] > 0 and g["h"] > 0, what
            assert p["targets"], what + " has no query"
            for t in p["targets"]:
                assert t["datasource"] == DS, "%s target %s" % (what, t["refId"])
                assert t.get("expr", "").strip(), "%s target %s" % (what, t["refId"])
                # Hard-coded windows break at other scrape intervals and zoom levels.
                for window in re.findall(r"\[([^\]]*)\]", t["expr"]):
                    assert window in ("$__rate_interval", "$__range"), \
                        "%s: window [%s] in %s" % (what, window, t["expr"])
            defaults = p["fieldConfig"]["defaults"]
            steps = defaults["thresholds"]["steps"]
            assert steps[0]["value"] is None and all(s["color"] for s in steps), what
            exprs = " ".join(t["expr"] for t in p["targets"])
            units = {defaults["unit"]} | {
                prop["value"] for o in p["fieldConfig"]["overrides"] for prop in o["properties"]
                if prop["id"] == "unit"}
            if "_lag_bytes" in exprs:
                assert "bytes" in units, what + " shows bytes without the bytes unit"
            if re.search(r"_lag_seconds|_duration_seconds", exprs):
                assert "s" in units, what + " shows seconds without the s unit"
            if p["type"] != "table":
                assert len(units) == 1, what + " mixes units %s" % units
            # Value panels colour by level; one showing a name only (the version) has none.
            if p["type"] in ("stat", "table", "bargauge") and p["options"].get("textMode") != "name":
                assert len(steps) > 1 or defaults["mappings"] or p["fieldConfig"]["overrides"], \
                    what + " has no coloured thresholds"


def test_cluster_detail_draws_each_replicas_thresholds():
    d = dashboards()["lagwatch-cluster.json"]
    exprs = {p["title"]: [t["expr"] for t in p["targets"]] for p in panels(d)}
    for title, metric in (("Lag", "lagwatch_threshold_seconds"),
                          ("Lag in bytes", "lagwatch_threshold_bytes")):
        joined = " ".join(exprs[title])
        assert '%s{cluster=~"$cluster", node=~"$node", severity="warning"}' % metric in joined
        assert '%s{cluster=~"$cluster", node=~"$node", severity="critical"}' % metric in joined


# ------------------------------------------------------------------ the live stack

class Prometheus:
    """A Prometheus server with its own config, storage and port; stopped by PID."""

    def __init__(self, tmp, lagwatch_port):
        self.port = free_port_block(1)
        self.dir = tmp
        config = tmp / "prometheus.yml"
        # JSON is YAML: no quoting surprises in paths.
        config.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "scrape_timeout": "900ms",
                       "evaluation_interval": "1s"},
            "rule_files": [RULES],
            # The job name must contain "lagwatch": LagwatchDown selects on it.
            "scrape_configs": [{"job_name": "lagwatch",
                                "static_configs": [{"targets": ["127.0.0.1:%d" % lagwatch_port]}]}],
        }, indent=2))
        if not os.access(PROMETHEUS_BIN, os.X_OK):
            pytest.fail("%s is missing: scripts/setup installs it (Debian package prometheus)"
                        % PROMETHEUS_BIN)
        self.log = open(tmp / "prometheus.log", "w+")
        self.proc = subprocess.Popen(
            [PROMETHEUS_BIN, "--config.file=%s" % config,
             "--storage.tsdb.path=%s" % (tmp / "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=str(tmp))
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("prometheus exited with %d:\n%s" % (self.proc.returncode,
                                                                        self.log_text()))
            try:
                with urllib.request.urlopen(self.url("/-/ready"), timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("prometheus not ready within 30 s:\n" + self.log_text())

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def log_text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def api(self, path, **params):
        url = self.url("/api/v1/" + path)
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            body = json.load(e)
        if body.get("status") != "success":
            raise AssertionError("prometheus %s %s: %s" % (path, params, body))
        return body["data"]

    def query(self, expr):
        """The result vector of an instant query."""
        return self.api("query", query=expr)["result"]

    def alerts(self, name=None, **labels):
        return [a for a in self.api("alerts")["alerts"]
                if (name is None or a["labels"]["alertname"] == name)
                and all(a["labels"].get(k) == v for k, v in labels.items())]

    def stop(self):
        stop_process(self.proc, grace_seconds=15)
        self.log.close()


def lagwatch_config(pg, mysql, router_url, webhook_url_file, alert_state_file):
    """Both fixtures as two clusters, pushing replica lists to a local router and notifying a
    local webhook receiver (so lagwatch_notifications_total exists for the panels)."""
    routing = ('[routing]\nkeepalive = "5s"\n'
               '[[routing.push]]\nname = "stack-router"\nurl = "%s"\n' % router_url)
    alerting = ('[alerting]\nstate_file = "%s"\n'
                '[[alerting.receiver]]\nname = "stack-webhook"\ntype = "webhook"\n'
                'url_file = "%s"\n' % (alert_state_file, webhook_url_file))
    clusters = pg.toml(cluster=PG_CLUSTER) + mysql.toml(cluster=MY_CLUSTER)
    return routing, alerting, clusters


@pytest.fixture(scope="module")
def stack(pg, mysql, tmp_path_factory):
    """(lagwatch, prometheus): lagwatch watching both fixtures, Prometheus scraping it every
    second with the shipped rules; everything stopped by PID afterwards."""
    tmp = tmp_path_factory.mktemp("stack")
    router, webhook = Receiver(), Receiver()
    lw = prom = None
    try:
        url_file = tmp / "webhook.url"
        url_file.write_text(webhook.url + "\n")
        routing, alerting, clusters = lagwatch_config(pg, mysql, router.url, url_file,
                                                      tmp / "alerts.json")
        lw = Lagwatch(routing + alerting + clusters, tmp)
        prom = Prometheus(tmp, lw.port)
        yield lw, prom
    finally:
        if prom is not None:
            prom.stop()
        if lw is not None:
            lw.stop()
        router.stop()
        webhook.stop()


def exported_names(lw):
    """Sample names in one scrape of lagwatch (counters with _total, histograms' _bucket ...)."""
    return {s.name for f in text_string_to_metric_families(lw.scrape()) for s in f.samples}


def test_every_panel_query_returns_series(stack):
    lw, prom = stack
    # rate() needs two samples in its window, changes() and increase() likewise: wait for a
    # few scrapes, then give each query a little longer (series that appear after the first
    # cycles, such as the first router push).
    wait_for("5 scrapes of lagwatch",
             lambda: prom.query('count_over_time(up{job="lagwatch"}[1m]) >= 5'), 30, 0.5)
    wait_for("lag series of both clusters in Prometheus",
             lambda: {r["metric"]["cluster"] for r in prom.query("lagwatch_replica_lag_seconds")}
             >= {PG_CLUSTER, MY_CLUSTER}, 30, 0.5)
    exported = exported_names(lw) | PROMETHEUS_SERIES
    unknown, empty = [], []
    checked = 0
    deadline = time.time() + 30
    for name, d in dashboards().items():
        for p, t in queries(d):
            where = "%s / %s / %s" % (name, p["title"], t["refId"])
            names = metric_names(substitute(t["expr"], dict(BUILTINS, cluster="c", node="n",
                                                            datasource="ds")))
            missing = names - exported
            if missing:
                unknown.append("%s: %s" % (where, ", ".join(sorted(missing))))
                continue
            for cluster, node in SUBJECTS:
                expr = substitute(t["expr"], dict(BUILTINS, cluster=cluster, node=node,
                                                  datasource="ds"))
                result = prom.query(expr)
                while not result and time.time() < deadline:
                    time.sleep(0.5)
                    result = prom.query(expr)
                checked += 1
                if not result:
                    empty.append("%s [cluster=%s node=%s]: %s" % (where, cluster, node, expr))
    assert not unknown, "dashboard queries name metrics lagwatch does not export:\n  " + \
        "\n  ".join(unknown) + "\nexported: %s" % sorted(exported)
    assert not empty, "dashboard queries returning no series:\n  " + "\n  ".join(empty)
    assert checked >= 2 * 40, "only %d queries checked" % checked


def test_variable_queries_list_the_clusters_and_nodes(stack):
    _, prom = stack
    for name, d in dashboards().items():
        for v in d["templating"]["list"]:
            if v["type"] != "query":
                continue
            m = re.fullmatch(r"label_values\((.+), *(\w+)\)", v["query"])
            assert m, "%s: variable %s: %s" % (name, v["name"], v["query"])
            for cluster, node in SUBJECTS:
                selector = substitute(m.group(1), {"cluster": cluster})
                values = prom.api("label/%s/values" % m.group(2), **{"match[]": selector})
                want = {PG_CLUSTER, MY_CLUSTER} if m.group(2) == "cluster" else {node}
                assert want <= set(values), "%s: variable %s (%s) lists %s" % (
                    name, v["name"], selector, values)


def test_the_shipped_rules_load_and_evaluate(stack):
    import yaml
    _, prom = stack
    with open(RULES) as f:
        shipped = {r["alert"] for g in yaml.safe_load(f)["groups"] for r in g["rules"]
                   if "alert" in r}

    def loaded():
        rules = {r["name"]: r for g in prom.api("rules")["groups"] for r in g["rules"]}
        return rules if all(rules.get(n, {}).get("health") == "ok" for n in shipped) else None

    rules = wait_for("every shipped rule evaluated with health ok", loaded, 20, 0.5)
    assert set(rules) == shipped
    assert all(not r.get("lastError") for r in rules.values()), rules


def test_paused_replay_fires_the_lag_alert_and_resuming_clears_it(stack, pg):
    """The shipped LagwatchReplicaLagCritical (lag above the critical threshold of 5 s, for
    30 s) goes pending, then firing, for the paused standby only; resuming clears it."""
    _, prom = stack
    alert = "LagwatchReplicaLagCritical"
    assert prom.alerts(alert) == [], "lag alert already active before the pause"
    started = time.time()
    pg.scenario("pg2", "pause")
    try:
        wait_for("%s pending for pg2" % alert, lambda: [
            a for a in prom.alerts(alert, cluster=PG_CLUSTER, node="pg2")
            if a["state"] in ("pending", "firing")], 30, 0.5)
        firing = wait_for("%s firing for pg2" % alert, lambda: [
            a for a in prom.alerts(alert, cluster=PG_CLUSTER, node="pg2")
            if a["state"] == "firing"], 60, 0.5)
        print("%s firing %.1f s after the pause" % (alert, time.time() - started))
        assert firing[0]["labels"]["severity"] == "critical"
        assert float(firing[0]["value"]) > 5
        others = [a["labels"] for a in prom.alerts()
                  if a["labels"]["alertname"].startswith("LagwatchReplicaLag")
                  and a["labels"].get("node") != "pg2"]
        assert others == [], "lag alerts for replicas that are not paused: %s" % others
    finally:
        pg.scenario("pg2", "resume")
    resumed = time.time()
    wait_for("%s cleared after resume" % alert,
             lambda: not prom.alerts(alert, cluster=PG_CLUSTER, node="pg2"), 30, 0.5)
    print("%s cleared %.1f s after resume" % (alert, time.time() - resumed))
    pg.run("wait-caught-up", pg.dir)
