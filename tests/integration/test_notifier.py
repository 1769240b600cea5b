"""The built-in notifier against real PostgreSQL standbys and real HTTP receivers on 127.0.0.1:
one Slack message and one PagerDuty trigger when replay stops, resolved with the same
dedup_key when it resumes, exact bodies, retries of 5xx, Retry-After, a hung receiver that
delays nobody, no second page and no lost resolve across a SIGKILL, secrets kept out of sight."""
import datetime
import json
import os
import re
import secrets
import subprocess
import threading
import time

import pytest

from conftest import Lagwatch, wait_for
from receiver import Receiver

DEDUP_KEY = "lagwatch:orders:pg2:lag_critical"
RUNBOOK = "https://github.com/lagwatch/lagwatch/blob/main/docs/runbook.md"
# pg2 paused: its lag grows 1 s/s past the critical threshold (3 s), then `for` (1 s) and
# group_wait (1 s) pass, on 500 ms cycles. Generous for a loaded machine, still bounded.
FIRE_TIMEOUT = 25
RESOLVE_TIMEOUT = 20
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


@pytest.fixture
def receivers():
    started = []

    def make(**kwargs):
        r = Receiver(**kwargs)
        started.append(r)
        return r

    yield make
    for r in started:
        r.stop()


@pytest.fixture
def caught_up(pg):
    pg.run("wait-caught-up", pg.dir)
    return pg


class Secrets:
    """A Slack webhook URL and a PagerDuty routing key as files, the way operators keep them."""

    def __init__(self, tmp_path, slack):
        self.slack_token = "T0%s/B0%s/%s" % (secrets.token_hex(4), secrets.token_hex(4),
                                             secrets.token_hex(12))
        self.slack_path = "/services/" + self.slack_token
        self.slack_url = "http://127.0.0.1:%d%s" % (slack.port, self.slack_path)
        self.slack_file = tmp_path / "slack.url"
        self.slack_file.write_text(self.slack_url + "\n")
        self.routing_key = "R" + secrets.token_hex(15)
        self.routing_key_file = tmp_path / "pd.key"
        self.routing_key_file.write_text(self.routing_key + "\n")
        self.hook_token = secrets.token_hex(10)

    def all(self):
        return [self.slack_token, self.slack_url, self.routing_key, self.hook_token]


def config(pg, state_file, receivers, **alerting):
    """pg.toml() with critical lag at 3 s and an [alerting] table; `receivers` are dicts of
    [[alerting.receiver]] keys (lists written as TOML arrays)."""
    settings = {"group_wait": "1s", "repeat_interval": "1h", "state_file": str(state_file)}
    settings.update(alerting)
    lines = ["[alerting]"] + ['%s = "%s"' % kv for kv in settings.items()]
    # Short `for`s so a test runs in seconds; the defaults are minutes (docs/alerting.md).
    lines += ["[alerting.for]", 'lag_critical = "1s"', 'lag_warning = "1s"',
              'replica_not_applying = "1s"']
    for r in receivers:
        lines.append("[[alerting.receiver]]")
        for k, v in r.items():
            lines.append("%s = %s" % (k, json.dumps(v if isinstance(v, list) else str(v))))
    return "\n".join(lines) + "\n" + pg.toml(extra="thresholds = { lag_seconds = [1.0, 3.0] }")


def slack_receiver(keys, **extra):
    return dict({"name": "chat", "type": "slack", "url_file": keys.slack_file,
                 "severities": ["critical"]}, **extra)


def pd_receiver(keys, pd, **extra):
    return dict({"name": "oncall", "type": "pagerduty", "url": pd.url,
                 "routing_key_file": keys.routing_key_file, "severities": ["critical"]}, **extra)


def posts(rx, path=None):
    return [r for r in rx.requests() if r.method == "POST" and (path is None or r.path == path)]


def delivered(rx, path=None):
    return [r for r in posts(rx, path) if 200 <= r.status < 300]


def events(pd):
    """(event_action, dedup_key) of every PagerDuty event delivered, in order."""
    return [(r.json["event_action"], r.json["dedup_key"]) for r in delivered(pd)]


def counts(lw, receiver):
    return {r: lw.value("lagwatch_notifications_total", receiver=receiver, result=r)
            for r in ("success", "retry", "failure")}


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def gaps(requests):
    return [round(b.arrived - a.arrived, 3) for a, b in zip(requests, requests[1:])]


def state(path):
    with open(path) as f:
        return json.load(f)


def told(path, receiver):
    """What the state file says `receiver` was told about pg2's lag_critical."""
    try:
        for a in state(path)["alerts"]:
            if a["dedup_key"] == DEDUP_KEY:
                return a["receivers"].get(receiver, {}).get("told")
    except (OSError, ValueError):
        return None
    return None


def check_pagerduty_trigger(request, keys, lw, paused_at):
    """The Events API v2 trigger, field by field."""
    assert request.path == "/lagwatch" and request.headers["Content-Type"] == "application/json"
    e = request.json
    assert set(e) == {"routing_key", "event_action", "dedup_key", "payload", "client",
                      "client_url", "links"}, e
    assert e["routing_key"] == keys.routing_key
    assert e["event_action"] == "trigger"
    assert e["dedup_key"] == DEDUP_KEY
    status_page = "http://127.0.0.1:%d/" % lw.port
    assert e["client"] == "lagwatch" and e["client_url"] == status_page
    assert e["links"] == [{"href": status_page, "text": "lagwatch status page"},
                          {"href": RUNBOOK + "#lagwatchreplicalagcritical",
                           "text": "Runbook: LagwatchReplicaLagCritical"}]
    p = e["payload"]
    assert set(p) == {"summary", "source", "severity", "timestamp", "component", "group",
                      "class", "custom_details"}, p
    assert re.fullmatch(r"Replica orders/pg2 lags \d+\.\ds \(\S+\) behind its primary, above its "
                        r"critical threshold \(3\.0s / 100MiB\)", p["summary"]), p["summary"]
    assert (p["source"], p["severity"], p["component"], p["group"], p["class"]) == (
        "orders/pg2", "critical", "pg2", "orders", "lag_critical")
    assert paused_at + 3 <= parse_time(p["timestamp"]) <= request.arrived, p["timestamp"]
    d = p["custom_details"]
    assert set(d) == {"alertname", "condition", "cluster", "node", "engine", "state",
                      "lag_seconds", "lag_bytes", "threshold_seconds", "threshold_bytes",
                      "firing_since"}, d
    assert (d["alertname"], d["condition"], d["cluster"], d["node"], d["engine"], d["state"]) == (
        "LagwatchReplicaLagCritical", "lag_critical", "orders", "pg2", "postgres", "critical")
    assert d["lag_seconds"] > 3.0 and isinstance(d["lag_bytes"], int) and d["lag_bytes"] >= 0, d
    assert (d["threshold_seconds"], d["threshold_bytes"]) == (3.0, 100 * 2 ** 20)
    assert d["firing_since"] == p["timestamp"]


def check_slack_firing(request, lw):
    """The Slack incoming-webhook message, field by field."""
    assert request.headers["Content-Type"] == "application/json"
    m = request.json
    status_page = "http://127.0.0.1:%d/" % lw.port
    assert set(m) == {"text", "blocks"}, m
    summary = (r"Replica orders/pg2 lags (\d+\.\ds) \((\S+)\) behind its primary, above its "
               r"critical threshold \(3\.0s / 100MiB\)")
    match = re.fullmatch(r"\[FIRING:1\] lagwatch: cluster orders\n• CRITICAL lag_critical on pg2: "
                         + summary + "\n<" + re.escape(status_page) + r"\|Status page>", m["text"])
    assert match, m["text"]
    lag, size = match.groups()
    header, section, context = m["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text",
                                                 "text": "[FIRING:1] lagwatch: cluster orders"}}
    assert section["type"] == "section" and set(section) == {"type", "text", "fields"}
    assert section["text"]["type"] == "mrkdwn"
    assert re.fullmatch(r":red_circle: \*CRITICAL lag_critical on pg2\*\n" + summary,
                        section["text"]["text"]), section["text"]["text"]
    fields = [(f["type"], f["text"]) for f in section["fields"]]
    assert fields[:5] == [("mrkdwn", "*Cluster*\norders"), ("mrkdwn", "*Node*\npg2"),
                          ("mrkdwn", "*Lag*\n%s (%s)" % (lag, size)),
                          ("mrkdwn", "*Threshold*\n3.0s / 100MiB"),
                          ("mrkdwn", "*State*\ncritical")], fields
    assert fields[5][0] == "mrkdwn" and re.fullmatch(r"\*Since\*\n" + ISO, fields[5][1]), fields
    assert len(fields) == 6
    assert context == {"type": "context", "elements": [{
        "type": "mrkdwn",
        "text": "<%s#lagwatchreplicalagcritical|Runbook> · <%s|Status page> · dedup_key `%s`"
                % (RUNBOOK, status_page, DEDUP_KEY)}]}


def test_paused_replay_pages_once_and_resume_resolves_with_the_same_dedup_key(
        caught_up, lagwatch_factory, receivers, tmp_path):
    pg = caught_up
    slack, pd, hook, stuck, am = (receivers() for _ in range(5))
    stuck.hang(60)  # a receiver that never answers must delay nobody
    keys = Secrets(tmp_path, slack)
    hook_file = tmp_path / "hook.url"
    hook_file.write_text("%s?token=%s\n" % (hook.url, keys.hook_token))
    stuck_file = tmp_path / "stuck.url"
    stuck_file.write_text(stuck.url + "\n")
    state_file = tmp_path / "alerts.json"
    lw = lagwatch_factory(config(pg, state_file, [
        slack_receiver(keys), pd_receiver(keys, pd),
        {"name": "hook", "type": "webhook", "url_file": hook_file, "conditions": ["lag_critical"]},
        {"name": "stuck", "type": "webhook", "url_file": stuck_file, "timeout": "2s",
         "conditions": ["lag_critical"]},
        {"name": "am", "type": "alertmanager", "url": "http://127.0.0.1:%d/" % am.port,
         "conditions": ["lag_critical"]}]))
    paused_at = time.time()
    pg.scenario("pg2", "pause")
    try:
        trigger = wait_for("the PagerDuty trigger", lambda: delivered(pd) and delivered(pd)[0],
                           FIRE_TIMEOUT)
        message = wait_for("the Slack message", lambda: delivered(slack) and delivered(slack)[0],
                           5)
        firing = wait_for("the webhook", lambda: delivered(hook) and delivered(hook)[0], 5)
        check_pagerduty_trigger(trigger, keys, lw, paused_at)
        check_slack_firing(message, lw)
        assert message.path == keys.slack_path
        assert abs(message.arrived - trigger.arrived) < 2, "the hung receiver delayed them"
        assert stuck.requests(), "the hung receiver was tried too"

        w = firing.json
        assert firing.path == "/lagwatch?token=" + keys.hook_token
        assert (w["version"], w["status"], w["receiver"], w["groupKey"]) == (
            "4", "firing", "hook", "lagwatch:orders")
        assert w["groupLabels"] == {"cluster": "orders"}
        assert w["externalURL"] == "http://127.0.0.1:%d/" % lw.port
        [alert] = w["alerts"]
        assert alert["status"] == "firing"
        assert alert["labels"] == {"alertname": "LagwatchReplicaLagCritical",
                                   "condition": "lag_critical", "cluster": "orders",
                                   "node": "pg2", "severity": "critical", "engine": "postgres"}
        assert set(alert["annotations"]) == {"summary", "description", "runbook_url", "dedup_key"}
        assert alert["annotations"]["dedup_key"] == DEDUP_KEY
        assert alert["startsAt"] == trigger.json["payload"]["timestamp"]
        assert alert["endsAt"] == "0001-01-01T00:00:00Z"
        assert re.fullmatch("[0-9a-f]{16}", alert["fingerprint"])

        posted = wait_for("Alertmanager", lambda: delivered(am) and delivered(am)[0], 5)
        assert posted.path == "/api/v2/alerts"
        [a] = posted.json
        assert set(a) == {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
        assert a["labels"] == alert["labels"] and a["startsAt"] == alert["startsAt"]
        # Kept alive by re-sending every minute; endsAt 4 re-sends ahead, as Prometheus does.
        assert 230 <= parse_time(a["endsAt"]) - posted.arrived <= 241, a["endsAt"]
    finally:
        pg.scenario("pg2", "resume")

    wait_for("the PagerDuty resolve", lambda: len(delivered(pd)) >= 2, RESOLVE_TIMEOUT)
    resolved = wait_for("the Slack resolve", lambda: len(delivered(slack)) >= 2 and
                        delivered(slack)[1], 5)
    assert events(pd) == [("trigger", DEDUP_KEY), ("resolve", DEDUP_KEY)]
    assert delivered(pd)[1].json == {"routing_key": keys.routing_key, "event_action": "resolve",
                                     "dedup_key": DEDUP_KEY}
    text = resolved.json["text"]
    assert re.fullmatch(r"\[RESOLVED:1\] lagwatch: cluster orders\n• RESOLVED lag_critical on "
                        r"pg2: Last seen: Replica orders/pg2 lags .*\n<http://127\.0\.0\.1:\d+/"
                        r"\|Status page>", text), text
    fields = [f["text"] for f in resolved.json["blocks"][1]["fields"]]
    assert fields[-1].startswith("*Resolved*\n") and fields[-2].startswith("*Since*\n"), fields
    assert resolved.json["blocks"][1]["text"]["text"].startswith(
        ":large_green_circle: *RESOLVED lag_critical on pg2*")
    hook_resolve = wait_for("the webhook resolve", lambda: len(delivered(hook)) >= 2 and
                            delivered(hook)[1], 5)
    assert hook_resolve.json["status"] == "resolved"
    assert hook_resolve.json["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
    am_resolve = wait_for("the Alertmanager resolve", lambda: len(delivered(am)) >= 2 and
                          delivered(am)[1], 5)
    assert parse_time(am_resolve.json[0]["endsAt"]) <= am_resolve.arrived

    # Exactly one message each way: nothing repeated, nothing for warnings.
    time.sleep(1.5)  # group_wait plus a cycle: anything else would have gone by now
    assert len(posts(slack)) == 2 and len(posts(pd)) == 2, (posts(slack), posts(pd))
    assert counts(lw, "oncall") == {"success": 2, "retry": 0, "failure": 0}
    assert counts(lw, "chat") == {"success": 2, "retry": 0, "failure": 0}
    assert counts(lw, "stuck")["retry"] >= 1 and counts(lw, "stuck")["success"] == 0
    wait_for("the resolved alert forgotten", lambda: state(state_file)["alerts"] == [] or
             state(state_file), 5)
    assert lw.value("lagwatch_alerts_firing", cluster="orders", condition="lag_critical") == 0

    # Secrets stay out of the log, /metrics, the API and the state file.
    scrape = lw.scrape()
    api = lw.get("/api/v1/clusters")[1] + lw.get("/")[1]
    log = lw.log_text()
    assert 'receiver=oncall' in log and "notification delivered" in log, log
    with open(state_file) as f:
        state_text = f.read()
    for secret in keys.all() + [hook.url, stuck.url, "/lagwatch"]:
        for where, text in (("log", log), ("/metrics", scrape), ("API", api),
                            ("state file", state_text)):
            assert secret not in text, "%r in the %s" % (secret, where)
    r = subprocess.run(["promtool", "check", "metrics"], input=scrape, capture_output=True,
                       text=True)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", (r.stdout, r.stderr)


def test_server_errors_are_retried_and_delivered_once(caught_up, lagwatch_factory, receivers,
                                                      tmp_path):
    pg = caught_up
    slack, pd = receivers(), receivers()
    pd.respond(500, 500, 500, 202)
    keys = Secrets(tmp_path, slack)
    lw = lagwatch_factory(config(pg, tmp_path / "alerts.json", [pd_receiver(keys, pd)]))
    pg.scenario("pg2", "pause")
    try:
        attempts = wait_for("four attempts", lambda: len(posts(pd)) >= 4 and posts(pd)[:4],
                            FIRE_TIMEOUT)
    finally:
        pg.scenario("pg2", "resume")
    assert [r.status for r in attempts] == [500, 500, 500, 202]
    # The same trigger each time, rendered with the latest figures.
    assert [(r.json["event_action"], r.json["dedup_key"]) for r in attempts] == [
        ("trigger", DEDUP_KEY)] * 4
    # Full-jitter backoff: the n-th retry waits at most 500 ms * 2^(n-1).
    for n, gap in enumerate(gaps(attempts), start=1):
        assert gap <= 0.5 * 2 ** (n - 1) + 0.5, gaps(attempts)
    wait_for("the resolve", lambda: len(delivered(pd)) >= 2, RESOLVE_TIMEOUT)
    assert events(pd) == [("trigger", DEDUP_KEY), ("resolve", DEDUP_KEY)], "delivered once"
    assert counts(lw, "oncall") == {"success": 2, "retry": 3, "failure": 0}


def test_a_receiver_that_is_down_is_retried_and_paged_once_it_is_back(
        caught_up, lagwatch_factory, receivers, tmp_path):
    """Connection refused is a network error: retried with backoff while the receiver is down,
    delivered once when it listens again, and the resolve follows."""
    pg = caught_up
    slack, pd = receivers(), receivers()
    pd.stop()  # its port now refuses connections
    keys = Secrets(tmp_path, slack)
    lw = lagwatch_factory(config(pg, tmp_path / "alerts.json", [pd_receiver(keys, pd)]))
    pg.scenario("pg2", "pause")
    try:
        wait_for("two retries against the refused port",
                 lambda: counts(lw, "oncall")["retry"] >= 2, FIRE_TIMEOUT)
        assert posts(pd) == []
        pd.start()
        # Full jitter: the third retry comes within 0.5 s * 2^2 of the second.
        wait_for("the trigger, once the receiver is back", lambda: delivered(pd), 10)
    finally:
        pg.scenario("pg2", "resume")
    wait_for("the resolve", lambda: len(delivered(pd)) >= 2, RESOLVE_TIMEOUT)
    assert events(pd) == [("trigger", DEDUP_KEY), ("resolve", DEDUP_KEY)], "delivered once"
    got = counts(lw, "oncall")
    assert got["success"] == 2 and got["failure"] == 0 and got["retry"] >= 2, got
    assert "Connection refused" in lw.log_text() or "connection refused" in lw.log_text(), \
        lw.log_text()[-2000:]


def test_retry_after_is_honoured(caught_up, lagwatch_factory, receivers, tmp_path):
    pg = caught_up
    slack = receivers()
    slack.respond((429, {"Retry-After": "2"}), 200)
    keys = Secrets(tmp_path, slack)
    lw = lagwatch_factory(config(pg, tmp_path / "alerts.json", [slack_receiver(keys)]))
    pg.scenario("pg2", "pause")
    try:
        first, second = wait_for("a retry", lambda: len(posts(slack)) >= 2 and posts(slack)[:2],
                                 FIRE_TIMEOUT)
    finally:
        pg.scenario("pg2", "resume")
    assert (first.status, second.status) == (429, 200)
    assert second.arrived - first.arrived >= 2.0, gaps([first, second])
    assert second.arrived - first.arrived <= 3.0, gaps([first, second])
    assert counts(lw, "chat")["retry"] == 1


def test_refused_event_is_counted_not_retried(caught_up, lagwatch_factory, receivers, tmp_path):
    pg = caught_up
    slack, pd = receivers(), receivers()
    pd.respond(400)  # PagerDuty's answer to an invalid event or routing key
    keys = Secrets(tmp_path, slack)
    lw = lagwatch_factory(config(pg, tmp_path / "alerts.json", [pd_receiver(keys, pd)]))
    pg.scenario("pg2", "pause")
    try:
        wait_for("the refused trigger", lambda: posts(pd), FIRE_TIMEOUT)
    finally:
        pg.scenario("pg2", "resume")
    wait_for("the resolve", lambda: len(posts(pd)) >= 2, RESOLVE_TIMEOUT)
    assert [(r.status, r.json["event_action"]) for r in posts(pd)] == [(400, "trigger"),
                                                                      (202, "resolve")]
    assert counts(lw, "oncall") == {"success": 1, "retry": 0, "failure": 1}
    assert "receiver refused the notification" in lw.log_text()


def test_sigkill_while_firing_neither_repages_nor_forgets_the_resolve(
        caught_up, lagwatch_factory, receivers, tmp_path):
    pg = caught_up
    slack, pd = receivers(), receivers()
    keys = Secrets(tmp_path, slack)
    state_file = tmp_path / "alerts.json"
    text = config(pg, state_file, [slack_receiver(keys), pd_receiver(keys, pd)])
    first = lagwatch_factory(text)
    second = None
    pg.scenario("pg2", "pause")
    try:
        wait_for("the trigger", lambda: events(pd) == [("trigger", DEDUP_KEY)], FIRE_TIMEOUT)
        wait_for("the Slack message", lambda: len(delivered(slack)) == 1, 5)
        # Both deliveries are on disk before the kill (else a re-send would be right).
        wait_for("the state file", lambda: told(state_file, "oncall") == "firing" and
                 told(state_file, "chat") == "firing", 5)
        first.proc.kill()
        first.proc.wait()

        os.makedirs(tmp_path / "second")
        second = Lagwatch(text, tmp_path / "second")
        assert re.search(r"alert state loaded.* firing=[1-9]", second.log_text()), second.log_text()
        wait_for("the alert evaluated as still firing", lambda: second.value(
            "lagwatch_alerts_firing", cluster="orders", condition="lag_critical") == 1, 10)
        # It would be re-sent on the first evaluation after group_wait (1 s); give it two.
        time.sleep(2)
        assert events(pd) == [("trigger", DEDUP_KEY)], "paged again after the restart"
        assert len(posts(slack)) == 1, second.log_text()
        pg.scenario("pg2", "resume")

        wait_for("the resolve after the restart", lambda: len(events(pd)) >= 2, RESOLVE_TIMEOUT)
        assert events(pd) == [("trigger", DEDUP_KEY), ("resolve", DEDUP_KEY)]
        resolved = wait_for("the Slack resolve", lambda: len(delivered(slack)) >= 2 and
                            delivered(slack)[1], 5)
        assert resolved.json["text"].startswith("[RESOLVED:1] lagwatch: cluster orders")
        assert counts(second, "oncall")["success"] == 1
    finally:
        pg.scenario("pg2", "resume")
        if second is not None:
            second.stop()


# ---- Grouping, rate limits and Alertmanager re-sends ------------------------------------------

def pause_together(pg, nodes, stagger):
    """Pauses replay on `nodes`: all at once (concurrent fixture calls) when `stagger` is 0,
    else one after the other `stagger` seconds apart. Returns when the first pause began."""
    started = time.time()
    if stagger:
        for i, node in enumerate(nodes):
            if i:
                time.sleep(max(0.0, started + i * stagger - time.time()))
            pg.scenario(node, "pause")
        return started
    errors = []

    def pause(node):
        try:
            pg.scenario(node, "pause")
        except Exception as e:  # reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=pause, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return started


def slack_fields(alert_block):
    """{'Node': 'pg2', 'Since': '…', …} of one alert's section in a Slack message."""
    return dict(f["text"].strip("*").split("*\n", 1) for f in alert_block["fields"])


@pytest.mark.parametrize("stagger", [0.0, 1.0], ids=["same-cycle", "two-cycles-apart"])
def test_alerts_of_one_cluster_firing_within_group_wait_go_out_in_one_slack_message(
        caught_up, lagwatch_factory, receivers, tmp_path, stagger):
    """Alertmanager's group_wait: the first alert of a (receiver, cluster) group waits
    group_wait, and everything of that group firing by then goes out in the same message.
    "two-cycles-apart" pauses pg3 two 500 ms cycles before pg2, so their lag crosses the
    critical level in different cycles; with a per-alert group_wait that was two messages."""
    pg = caught_up
    slack = receivers()
    keys = Secrets(tmp_path, slack)
    group_wait = 3.0
    lw = lagwatch_factory(config(pg, tmp_path / "alerts.json", [slack_receiver(keys)],
                                 group_wait="3s"))
    try:
        pause_together(pg, ["pg3", "pg2"], stagger)
        both_seen = wait_for("both lag_critical alerts firing", lambda: lw.value(
            "lagwatch_alerts_firing", cluster="orders", condition="lag_critical") == 2
            and time.time(), FIRE_TIMEOUT)
        message = wait_for("the Slack message", lambda: delivered(slack) and delivered(slack)[0],
                           group_wait + 5)
        # Whatever else would come for these firings has come group_wait after the later one
        # fired plus a cycle; nothing may follow before the resume.
        time.sleep(max(0.0, both_seen + group_wait + 1.0 - time.time()))
        firing_posts = posts(slack)
    finally:
        pg.scenario("pg2", "resume")
        pg.scenario("pg3", "resume")
    assert len(firing_posts) == 1, ["%s at %.3f" % (r.json["text"].splitlines()[0], r.arrived)
                                    for r in firing_posts]
    m = message.json
    assert m["text"].startswith("[FIRING:2] lagwatch: cluster orders\n"), m["text"]
    sections = [b for b in m["blocks"] if b["type"] == "section"]
    nodes = sorted(slack_fields(b)["Node"] for b in sections)
    assert nodes == ["pg2", "pg3"], m["text"]
    since = sorted(parse_time(slack_fields(b)["Since"]) for b in sections)
    # The group's first firing waited group_wait (not less), and the message went out then,
    # not group_wait after the later firing.
    assert message.arrived - since[0] >= group_wait - 0.05, (since, message.arrived)
    assert message.arrived - since[0] <= group_wait + 1.5, (since, message.arrived)
    if stagger:
        assert since[1] - since[0] >= 0.4, "they fired in the same cycle: %r" % since
    wait_for("both resolves", lambda: sum(
        r.json["text"].count("• RESOLVED") for r in delivered(slack)[1:]) == 2, RESOLVE_TIMEOUT)
    assert counts(lw, "chat")["failure"] == 0


def test_receivers_sharing_a_slack_webhook_post_at_most_one_message_per_second(
        caught_up, lagwatch_factory, receivers, tmp_path):
    """Two receivers on one webhook URL, each repeating every second, want 2 messages/s;
    the shared limit lets one through per second, and the webhook sees them >= ~1 s apart."""
    pg = caught_up
    slack = receivers()
    keys = Secrets(tmp_path, slack)
    lw = lagwatch_factory(config(pg, tmp_path / "alerts.json", [
        slack_receiver(keys, name="chat-a", repeat_interval="1s"),
        slack_receiver(keys, name="chat-b", repeat_interval="1s")]))
    pg.scenario("pg2", "pause")
    try:
        wait_for("a first message", lambda: delivered(slack), FIRE_TIMEOUT)
        # Eight seconds of two receivers wanting a message every second each.
        got = wait_for("9 messages", lambda: len(posts(slack)) >= 9 and posts(slack), 15)
    finally:
        pg.scenario("pg2", "resume")
    assert all(r.path == keys.slack_path and r.status == 202 for r in got), got
    g = gaps(got)
    # The receiver's arrival clock: one POST's latency may shorten the next gap a little.
    assert min(g) >= 0.9, "POSTs to one webhook closer than 1 s: %r" % g
    # And the limit, not the demand, set the pace: they came back to back at ~1/s.
    assert sorted(g)[len(g) // 2] <= 1.25, g
    a, b = counts(lw, "chat-a"), counts(lw, "chat-b")
    assert a["success"] >= 2 and b["success"] >= 2, (a, b)
    assert a["retry"] == b["retry"] == 0, (a, b)
    print("slack gaps (s):", g)


def test_pagerduty_events_per_routing_key_stay_within_burst_and_rate(
        caught_up, lagwatch_factory, receivers, tmp_path):
    """Three receivers on one routing key, repeating every second, with both standbys
    paused: far more than PagerDuty's 120 events/min wanted. The shared token bucket lets
    a burst of 20 through, then 100/min; every stretch of the arrivals conforms."""
    pg = caught_up
    slack, pd = receivers(), receivers()
    keys = Secrets(tmp_path, slack)
    every_severity = []
    for i in range(3):
        r = pd_receiver(keys, pd, name="pd-%d" % i, repeat_interval="1s")
        del r["severities"]  # warnings too: more alerts to repeat
        every_severity.append(r)
    lw = lagwatch_factory(config(pg, tmp_path / "alerts.json", every_severity))
    burst, rate = 20, 100 / 60
    try:
        pause_together(pg, ["pg2", "pg3"], 0)
        first = wait_for("a first event", lambda: delivered(pd) and delivered(pd)[0],
                         FIRE_TIMEOUT)
        # The burst, then at least 12 s at the sustained rate.
        got = wait_for("40 events", lambda: len(posts(pd)) >= 40 and posts(pd), 40)
    finally:
        pg.scenario("pg2", "resume")
        pg.scenario("pg3", "resume")
    assert got[0] is first
    assert {r.json["routing_key"] for r in got} == {keys.routing_key}
    arrived = [r.arrived for r in got]
    # Token bucket conformance: any n consecutive events span at least (n - burst) / rate
    # seconds (arrival jitter allowed: 0.1 s).
    worst = None
    for i in range(len(arrived)):
        for j in range(i + burst, len(arrived)):
            needed = (j - i + 1 - burst) / rate
            slack_s = arrived[j] - arrived[i] + 0.1 - needed
            if worst is None or slack_s < worst[0]:
                worst = (slack_s, i, j)
    assert worst[0] >= 0, "events %d..%d: %d in %.2f s, above a burst of %d then %.2f/s" % (
        worst[1], worst[2], worst[2] - worst[1] + 1, arrived[worst[2]] - arrived[worst[1]],
        burst, rate)
    # The limit, not the demand, set the pace: the burst went out at once, and the whole run
    # came close to the most the bucket allows.
    span = arrived[-1] - arrived[0]
    assert arrived[burst - 1] - arrived[0] < 3.0, gaps(got[:burst])
    assert len(arrived) >= 0.9 * (burst + rate * span), (len(arrived), span)
    sustained = (len(arrived) - burst) / (arrived[-1] - arrived[burst - 1])
    assert all(counts(lw, "pd-%d" % i)["retry"] == 0 for i in range(3))
    print("pagerduty: %d events, burst of %d in %.2f s, then %.3f/s" % (
        len(arrived), burst, arrived[burst - 1] - arrived[0], sustained))


def test_alertmanager_alerts_are_resent_while_firing_and_resolved_with_ends_at_now(
        caught_up, lagwatch_factory, receivers, tmp_path):
    """[[alerting.receiver]] repeat_interval is the re-send interval of an alertmanager
    receiver: each re-send moves endsAt ahead (4 intervals past the send), and the resolve
    carries endsAt = when it resolved, not later than its arrival."""
    pg = caught_up
    am = receivers()
    resend = 2.0
    lw = lagwatch_factory(config(pg, tmp_path / "alerts.json", [
        {"name": "am", "type": "alertmanager", "url": "http://127.0.0.1:%d" % am.port,
         "conditions": ["lag_critical"], "repeat_interval": "2s"}]))
    pg.scenario("pg2", "pause")
    try:
        firing = wait_for("the first post and two re-sends",
                          lambda: len(delivered(am)) >= 3 and delivered(am)[:3], FIRE_TIMEOUT)
    finally:
        resumed_at = time.time()
        pg.scenario("pg2", "resume")
    resolve = wait_for("the resolve", lambda: [r for r in delivered(am)
                                               if parse_time(r.json[0]["endsAt"]) <= r.arrived],
                       RESOLVE_TIMEOUT)[0]
    sent = delivered(am)
    firing_all = sent[:sent.index(resolve)]
    assert firing == firing_all[:3]
    for r in firing_all:
        assert r.path == "/api/v2/alerts", r.path
        [a] = r.json
        assert a["labels"]["node"] == "pg2" and a["labels"]["condition"] == "lag_critical"
        ahead = parse_time(a["endsAt"]) - r.arrived
        assert 4 * resend - 1.0 <= ahead <= 4 * resend + 0.01, (a["endsAt"], r.arrived)
    assert len({r.json[0]["startsAt"] for r in firing_all + [resolve]}) == 1
    ends = [parse_time(r.json[0]["endsAt"]) for r in firing_all]
    assert ends == sorted(ends) and len(set(ends)) == len(ends), ends
    g = gaps(firing_all)
    assert all(resend - 0.05 <= x <= resend + 1.0 for x in g), g
    [a] = resolve.json
    ends_at = parse_time(a["endsAt"])
    assert resumed_at - 0.001 <= ends_at <= resolve.arrived, (resumed_at, a["endsAt"],
                                                               resolve.arrived)
    # Once resolved it is not re-sent: a re-send interval and a cycle later, nothing more.
    time.sleep(resend + 1.0)
    assert delivered(am)[-1] is resolve, delivered(am)[sent.index(resolve):]
    assert counts(lw, "am")["failure"] == 0
    print("alertmanager re-send gaps (s):", g)
