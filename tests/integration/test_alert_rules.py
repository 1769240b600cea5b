"""alerts/lagwatch.rules.yml: promtool accepts the rules and their unit tests pass; every alert
is tested, labelled and documented; every metric and label the rules use is in a live scrape
of lagwatch watching real PostgreSQL servers."""
import os
import re
import shutil
import subprocess
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import ROOT

RULES = os.path.join(ROOT, "alerts", "lagwatch.rules.yml")
RULE_TESTS = os.path.join(ROOT, "alerts", "lagwatch.rules.test.yml")
RUNBOOK = os.path.join(ROOT, "docs", "runbook.md")
RUNBOOK_URL = "https://github.com/lagwatch/lagwatch/blob/main/docs/runbook.md"

# Labels a rule may use that lagwatch does not put on every scrape: `channel` exists only for
# MySQL multi-source named channels; `job` and `instance` are added by Prometheus.
LABELS_NOT_IN_A_PG_SCRAPE = {"channel", "job", "instance"}
# Series that Prometheus makes, not lagwatch.
PROMETHEUS_SERIES = {"up"}
PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "group_left", "group_right", "on",
                   "ignoring", "by", "without", "inf", "nan"}


def promtool(*args):
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool is missing: scripts/setup installs it (Debian package prometheus)")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def load_yaml(path):
    try:
        import yaml
    except ImportError:
        pytest.fail("python3-yaml is missing: apt-get install python3-yaml")
    with open(path) as f:
        return yaml.safe_load(f)


def alerting_rules():
    return [r for g in load_yaml(RULES)["groups"] for r in g["rules"] if "alert" in r]


def strip_strings(expr):
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)


def metric_names(expr):
    """Metric names a PromQL expression selects (functions, keywords and labels left out)."""
    s = strip_strings(expr)
    s = re.sub(r"\{[^}]*\}", " ", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)  # range durations
    s = re.sub(r"\b(?:on|ignoring|by|without|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in re.finditer(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*(\()?", s):
        if m.group(2) or m.group(1) in PROMQL_KEYWORDS:
            continue  # a function or aggregation, or a keyword
        names.add(m.group(1))
    return names


def label_names(expr):
    """Label names a PromQL expression matches on, groups by or compares."""
    names = set()
    for matchers in re.findall(r"\{([^}]*)\}", strip_strings(expr)):
        names |= set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=|!=|=~|!~)", matchers))
    for group in re.findall(r"\b(?:on|ignoring|by|without|group_left|group_right)\s*\(([^)]*)\)",
                            expr):
        names |= {n.strip() for n in group.split(",") if n.strip()}
    names.discard("__name__")
    return names


def used_by_rules():
    """(metric names, label names) the rules use, in expressions and annotation templates."""
    metrics, labels = set(), set()
    for rule in alerting_rules():
        metrics |= metric_names(rule["expr"])
        labels |= label_names(rule["expr"])
        for text in rule.get("annotations", {}).values():
            metrics |= set(re.findall(r"\blagwatch_[a-z_]+", text))
            labels |= set(re.findall(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)", text))
            for query in re.findall(r'printf "([^"]*)"', text):
                labels |= label_names(query)
    return metrics, labels


def github_anchor(heading):
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def test_promtool_check_rules_passes_without_warnings():
    r = promtool("check", "rules", "--lint=all", "--lint-fatal", RULES)
    assert r.returncode == 0, r.stdout + r.stderr
    n = len(alerting_rules())
    lines = [line.strip() for line in r.stdout.splitlines() if line.strip()]
    assert lines == ["Checking %s" % RULES, "SUCCESS: %d rules found" % n], r.stdout
    assert r.stderr == "", r.stderr


def test_promtool_rule_unit_tests_pass():
    r = promtool("test", "rules", RULE_TESTS)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout and "FAILED" not in r.stdout, r.stdout
    assert r.stderr == "", r.stderr


def test_every_alert_is_tested_firing_and_silent():
    tests = load_yaml(RULE_TESTS)["tests"]
    firing, silent = set(), set()
    for t in tests:
        for check in t.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    names = [r["alert"] for r in alerting_rules()]
    assert len(names) == len(set(names)), names
    assert set(names) - firing == set(), "alerts never shown firing"
    assert set(names) - silent == set(), "alerts never shown silent (before `for`, or resolved)"
    assert (firing | silent) - set(names) == set(), "tests of alerts that do not exist"


def test_every_alert_has_severity_for_annotations_and_a_runbook_section():
    with open(RUNBOOK) as f:
        anchors = {github_anchor(m) for m in re.findall(r"^#{1,6} (.+)$", f.read(), re.M)}
    for rule in alerting_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert "for" in rule, name
        ann = rule["annotations"]
        assert set(ann) == {"summary", "description", "runbook_url"}, name
        assert ann["runbook_url"] == "%s#%s" % (RUNBOOK_URL, name.lower()), name
        assert name.lower() in anchors, "docs/runbook.md has no section %s" % name


def test_rule_expressions_parse_to_known_names():
    """Guards the little PromQL reader the live-scrape test relies on."""
    metrics, _ = used_by_rules()
    odd = {m for m in metrics if not m.startswith("lagwatch_") and m not in PROMETHEUS_SERIES}
    assert odd == set(), "not metric names; fix metric_names(): %s" % sorted(odd)
    assert {"lagwatch_replica_lag_seconds", "lagwatch_threshold_seconds", "lagwatch_node_up",
            "lagwatch_cluster_primaries", "up"} <= metrics


def test_every_metric_and_label_the_rules_use_is_in_a_live_scrape(pg, lagwatch_factory):
    metrics, labels = used_by_rules()
    metrics -= PROMETHEUS_SERIES
    labels -= LABELS_NOT_IN_A_PG_SCRAPE
    lw = lagwatch_factory(pg.toml())
    # Lag series need the primary's position timeline: poll until they are there.
    deadline = time.time() + 15
    while True:
        text = lw.scrape()
        exported = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
        seen_labels = {k for f in text_string_to_metric_families(text)
                       for s in f.samples for k in s.labels}
        missing = (metrics - exported) | {"label " + l for l in labels - seen_labels}
        if not missing or time.time() > deadline:
            break
        time.sleep(0.25)
    assert missing == set(), "the rules use names lagwatch does not export:\n%s" % text
