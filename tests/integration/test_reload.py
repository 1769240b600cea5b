"""Reload (SIGHUP and POST /-/reload): unchanged clusters keep their state; a bad config is
refused with its file:line:column and the running one stays."""
import contextlib
import datetime
import json
import re
import secrets
import signal
import socket
import subprocess
import time

from conftest import free_port_block, wait_for
from receiver import Receiver


def test_reload_keeps_unchanged_clusters_and_refuses_bad_config(pg, lagwatch_factory):
    lw = lagwatch_factory(pg.toml())
    wait_for("listed", lambda: len(lw.replicas()[1]["replicas"]) == 2, 10)
    generation = lw.replicas()[1]["generation"]
    count = lw.value("lagwatch_collection_duration_seconds_count", cluster="orders", node="pg2")
    original = lw.config.read_text()

    # A second cluster appears; "orders" is untouched (a comment moves its lines too).
    lw.config.write_text(original.replace("[[cluster]]", "# reloaded\n[[cluster]]", 1) +
                         pg.toml(cluster="orders-copy"))
    lw.proc.send_signal(signal.SIGHUP)
    wait_for("second cluster", lambda: [c["cluster"] for c in lw.clusters()] == ["orders", "orders-copy"], 10)
    assert lw.value("lagwatch_config_last_reload_successful") == 1
    # State kept: the list kept its generation (a rebuilt cluster starts a new one from the
    # clock) and the collection counter goes on from where it was instead of restarting.
    assert lw.replicas()[1]["generation"] == generation
    after = lw.value("lagwatch_collection_duration_seconds_count", cluster="orders", node="pg2")
    assert after >= count
    wait_for("counter goes on", lambda: lw.value("lagwatch_collection_duration_seconds_count",
                                                 cluster="orders", node="pg2") > after, 5)

    # A bad file is refused with its position; everything keeps running as it was.
    lw.config.write_text(original + "\n[defaults]\nintervall = \"1s\"\n")
    status, _, body = lw.request("/-/reload", method="POST")
    assert status == 500, body
    line = len(original.splitlines()) + 3  # after the blank line and [defaults]
    assert "%s:%d:1:" % (lw.config, line) in body and 'unknown key "defaults.intervall"' in body, body
    assert lw.value("lagwatch_config_last_reload_successful") == 0
    assert [c["cluster"] for c in lw.clusters()] == ["orders", "orders-copy"]
    before = lw.value("lagwatch_collection_duration_seconds_count", cluster="orders", node="pg2")
    wait_for("still collecting", lambda: lw.value("lagwatch_collection_duration_seconds_count",
                                                  cluster="orders", node="pg2") > before, 5)

    # Back to one cluster: the removed one disappears from metrics and the API.
    lw.config.write_text(original)
    status, _, body = lw.request("/-/reload", method="POST")
    assert status == 200, body
    assert [c["cluster"] for c in lw.clusters()] == ["orders"]
    assert lw.value("lagwatch_node_up", cluster="orders-copy", node="pg1") is None
    assert lw.value("lagwatch_config_last_reload_successful") == 1
    assert lw.replicas()[1]["generation"] == generation


# ---------------------------------------------------------------- state kept across reloads

def sighup_reload(lw):
    """Sends SIGHUP and waits until lagwatch has applied it (its success timestamp moves)."""
    before = lw.value("lagwatch_config_last_reload_success_timestamp_seconds")
    lw.proc.send_signal(signal.SIGHUP)
    wait_for("the SIGHUP reload applied", lambda: lw.value(
        "lagwatch_config_last_reload_success_timestamp_seconds") != before or
        lw.value("lagwatch_config_last_reload_successful") == 0, 10)
    assert lw.value("lagwatch_config_last_reload_successful") == 1, lw.log_text()


def post_reload(lw):
    status, _, body = lw.request("/-/reload", method="POST")
    assert status == 200, body


def moved(text):
    """The same config with every [[cluster]] a line further down: settings unchanged."""
    return text.replace("[[cluster]]", "# reloaded\n[[cluster]]", 1)


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def node_view(lw, node="pg2", cluster="orders"):
    """(cycle, lag_seconds, lag_beyond_horizon, sampled_at) of a replica in one API answer."""
    for c in lw.clusters():
        if c["cluster"] != cluster:
            continue
        for n in c["nodes"]:
            if n["name"] == node and n.get("channels"):
                ch = n["channels"][0]
                return c["cycle"], ch["lag_seconds"], ch["lag_beyond_horizon"], parse_time(
                    n["sampled_at"])
    return None, None, None, None


def listed(lw, node="pg2", cluster="orders"):
    return node in [r["node"] for r in lw.replicas(cluster)[1]["replicas"]]


def test_paused_standby_lag_keeps_growing_through_reloads(pg, lagwatch_factory):
    """Replay paused on pg2: its lag is now − t, t the last time the primary was at pg2's
    replayed position. Through a SIGHUP and a POST reload that leave "orders" as it is, every
    cycle still reports that same t: the position timeline survived (a new one would report
    the lag as absent or restart it from 0). A third reload changes "orders" (its timeout):
    it is rebuilt, but on the same servers it keeps its timeline, so pg2's lag goes on and
    pg2, beyond max_lag_seconds (5 s), stays out of the replica list."""
    pg.run("wait-caught-up", pg.dir)
    lw = lagwatch_factory(pg.toml())
    original = lw.config.read_text()
    wait_for("pg2's lag measured", lambda: node_view(lw)[1] is not None, 10)
    # sampled_at -> (cycle, lag, beyond_horizon, listed): one API answer per cycle
    readings = {}

    def observe(cycles):
        """Records pg2 until `cycles` more cycles were seen (500 ms each, 15 s at most)."""
        start = len(readings)
        deadline = time.time() + 15
        while len(readings) < start + cycles and time.time() < deadline:
            cycle, lag, beyond, at = node_view(lw)
            readings.setdefault(at, (cycle, lag, beyond, listed(lw)))
            time.sleep(0.1)
        assert len(readings) >= start + cycles, "only %d cycles in 15 s" % (len(readings) - start)
        return max(readings)  # the newest sampled_at

    pg.scenario("pg2", "pause")
    try:
        wait_for("pg2's lag above 2 s", lambda: (node_view(lw)[1] or 0) > 2, 20)
        before_sighup = observe(3)
        # A second cluster appears; "orders" only moves down the file.
        lw.config.write_text(moved(original) + pg.toml(cluster="orders-copy"))
        sighup_reload(lw)
        wait_for("the second cluster", lambda: [c["cluster"] for c in lw.clusters()] == [
            "orders", "orders-copy"], 10)
        before_post = observe(3)
        lw.config.write_text(original)
        post_reload(lw)
        assert [c["cluster"] for c in lw.clusters()] == ["orders"]
        observe(3)
        wait_for("pg2 out of the list", lambda: (node_view(lw)[1] or 0) > 5.5 and not listed(lw), 15)
        before_rebuild = observe(1)
        lw.config.write_text(original.replace('timeout = "400ms"', 'timeout = "450ms"'))
        post_reload(lw)
        wait_for("orders rebuilt", lambda: node_view(lw)[0] < readings[before_rebuild][0], 10)
        rebuilt = observe(4)
    finally:
        pg.scenario("pg2", "resume")

    table = "\n".join("sampled_at %.3f: cycle %d lag %s beyond_horizon %s listed %s" % (t, *r)
                      for t, r in sorted(readings.items()))
    assert all(r[1] is not None and not r[2] for r in readings.values()), table
    lags = [readings[t][1] for t in sorted(readings)]
    assert all(b > a for a, b in zip(lags, lags[1:])), "lag did not keep growing:\n" + table
    # The anchor t = sampled_at − lag is the same in every cycle: the same timeline entry.
    anchors = [t - r[1] for t, r in readings.items()]
    spread = max(anchors) - min(anchors)
    assert spread < 0.005, "the lag's anchor moved by %.3f s:\n%s" % (spread, table)
    # Cycles went on through the first two reloads and started again with the rebuild.
    cycles = [readings[t][0] for t in sorted(readings)]
    restarts = [i for i in range(1, len(cycles)) if cycles[i] <= cycles[i - 1]]
    assert len(restarts) == 1 and cycles[restarts[0]] <= 2, "one restart, at the rebuild:\n" + table
    assert not any(r[3] for t, r in readings.items() if t >= before_rebuild), table
    print("pg2 paused: lag %.2f s before the SIGHUP, %.2f s before the POST, %.2f s before the "
          "rebuild, %.2f s at the end; anchor spread %.1f ms over %d cycles" % (
              readings[before_sighup][1], readings[before_post][1], readings[before_rebuild][1],
              readings[rebuilt][1], spread * 1000, len(readings)))


RISE = 5
MAX_LAG = 2.5  # above one 1 s interval: a caught-up replica can read up to one interval


def routing_view(lw, node="pg2", cluster="orders"):
    """(cycle, up, lag_seconds, routable, applying) of a replica from one scrape (one
    snapshot). The node's collection count is the cluster's cycle number: one collection per
    cycle."""
    got = {}
    for (name, labels), value in lw.samples().items():
        labels = dict(labels)
        if labels.get("cluster") == cluster and labels.get("node") == node:
            got[name] = value
    count = got.get("lagwatch_collection_duration_seconds_count")
    return (int(count) if count is not None else None, got.get("lagwatch_node_up"),
            got.get("lagwatch_replica_lag_seconds"), got.get("lagwatch_replica_routable"),
            got.get("lagwatch_replica_applying"))


def test_a_replica_mid_rise_stays_mid_rise_across_a_reload(pg, lagwatch_factory):
    """rise = 5: after replay resumes, pg2 rejoins the list on its 5th consecutive good cycle.
    A POST reload after its 2nd good cycle, leaving "orders" as it is, changes nothing: pg2
    rejoins on that same 5th cycle, not at once (state lost, first sight trusted) and not 5
    cycles after the reload (count restarted)."""
    pg.run("wait-caught-up", pg.dir)
    lw = lagwatch_factory(pg.toml(interval="1s", timeout="800ms", extra=(
        "routing = { rise = %d, fall = 1, max_lag_seconds = %s }" % (RISE, MAX_LAG))))
    original = lw.config.read_text()
    wait_for("pg2 listed", lambda: routing_view(lw)[3] == 1, 15)
    pg.scenario("pg2", "pause")
    try:
        out = wait_for("pg2 out of the list", lambda: (lambda v: v[3] == 0 and v)(
            routing_view(lw)), 20)
    finally:
        pg.scenario("pg2", "resume")

    seen = {out[0]: out[1:]}  # cycle -> (up, lag, routable, applying); this one was paused
    reload_after = None  # the last cycle seen before the reload
    # Fit for the list: up, lag within MAX_LAG, replaying (paused behind the primary is out).
    good = lambda c: (seen[c][0] == 1 and seen[c][1] is not None and seen[c][1] <= MAX_LAG
                      and seen[c][3] == 1)
    deadline = time.time() + 30
    while time.time() < deadline:
        cycle, up, lag, routable, applying = routing_view(lw)
        assert cycle >= max(seen), "the cycle count went back from %d to %d: the reload " \
            "rebuilt the cluster (pg2 routable %s)" % (max(seen), cycle, routable)
        seen.setdefault(cycle, (up, lag, routable, applying))
        if routable == 1:
            break
        streak = [c for c in sorted(seen) if good(c)]
        if reload_after is None and len(streak) >= 2 and all(
                good(c) for c in sorted(seen) if c >= streak[0]):
            reload_after = max(seen)
            lw.config.write_text(moved(original) + "# and a comment at the end\n")
            post_reload(lw)
        time.sleep(0.05)
    table = "\n".join("cycle %d: up %s lag %s routable %s applying %s" % (c, *seen[c])
                      for c in sorted(seen))
    assert seen[max(seen)][2] == 1, "pg2 not re-listed within 30 s:\n" + table
    assert reload_after is not None, "no reload happened:\n" + table
    listed = max(seen)
    first_good = min(c for c in seen if c > max(c for c in seen if not good(c)))
    last_bad = max(c for c in seen if c < first_good)
    assert all(good(c) and seen[c][2] == 0 for c in seen if first_good <= c < listed), table
    assert first_good < reload_after + 1 < listed, "the reload was not mid-rise:\n" + table
    # Re-listed on the RISE-th good cycle, counting from the first good one (which lies after
    # the last bad cycle seen and at or before the first good one seen).
    assert last_bad + RISE <= listed <= first_good + RISE - 1, (
        "pg2 re-listed at cycle %d; first good cycle seen %d (last bad %d), reload after cycle "
        "%d, rise %d:\n%s" % (listed, first_good, last_bad, reload_after, RISE, table))
    print("pg2: first good cycle %d, reload after cycle %d, re-listed at cycle %d (rise %d)" % (
        first_good, reload_after, listed, RISE))


# ---------------------------------------------------------------- the notifier across reloads

def alerting_config(pg, tmp_path, hook, group_wait="1s", thresholds="[1.0, 3.0]"):
    """pg.toml() (500 ms cycles) with critical lag at 3 s, and the built-in notifier sending
    lag_critical to one webhook receiver after `for` 1 s and group_wait."""
    url_file = tmp_path / "hook.url"
    url_file.write_text(hook.url + "\n")
    return ('[alerting]\nstate_file = "%s"\ngroup_wait = "%s"\nrepeat_interval = "1h"\n'
            '[alerting.for]\nlag_critical = "1s"\n'
            '[[alerting.receiver]]\nname = "hook"\ntype = "webhook"\nurl_file = "%s"\n'
            'conditions = ["lag_critical"]\n' % (tmp_path / "alerts.json", group_wait, url_file)
            + pg.toml(extra="thresholds = { lag_seconds = %s }" % thresholds))


def sent(hook):
    """(status of the webhook body, lagwatch's HTTP answer) of every POST received."""
    return [(r.json["status"], r.status) for r in hook.requests() if r.method == "POST"]


def wait_cycles(lw, n, cluster="orders"):
    """Waits until `cluster` completed `n` more cycles (of 500 ms): the time in which a
    notification the reload caused would have gone out (group_wait 1 s, `for` 1 s)."""
    start = [c["cycle"] for c in lw.clusters() if c["cluster"] == cluster][0]
    wait_for("%d more cycles" % n, lambda: [c["cycle"] for c in lw.clusters()
                                            if c["cluster"] == cluster][0] >= start + n, 15)


@contextlib.contextmanager
def paging_about_paused_pg2(pg, lagwatch_factory, tmp_path, hook):
    """lagwatch (alerting_config) with pg2's replay paused until the block ends; the block
    starts once `hook` has received the firing notification, and nothing else."""
    pg.run("wait-caught-up", pg.dir)
    lw = lagwatch_factory(alerting_config(pg, tmp_path, hook))
    pg.scenario("pg2", "pause")
    try:
        wait_for("the firing notification", lambda: sent(hook), 25)
        assert sent(hook) == [("firing", 202)]
        yield lw
    finally:
        pg.scenario("pg2", "resume")


def test_a_firing_alert_is_not_sent_again_after_reloads(pg, lagwatch_factory, tmp_path):
    hook = Receiver()
    try:
        with paging_about_paused_pg2(pg, lagwatch_factory, tmp_path, hook) as lw:
            # SIGHUP: "orders" only moves in the file; [alerting] group_wait changes, which a
            # reload does not apply (the notifier keeps running as it was).
            lw.config.write_text(moved(lw.config.read_text()).replace(
                'group_wait = "1s"', 'group_wait = "2s"'))
            sighup_reload(lw)
            wait_cycles(lw, 8)
            assert sent(hook) == [("firing", 202)], "sent again after the SIGHUP reload"
            post_reload(lw)
            wait_cycles(lw, 8)
            assert sent(hook) == [("firing", 202)], "sent again after the POST reload"

            # "orders" itself changes, its primary's DSN included (connect_timeout, which
            # lagwatch sets itself: the same server, but lagwatch cannot know): it is rebuilt
            # with an empty timeline, whose first lag figures are lower bounds from 0. The
            # alert neither resolves nor fires anew while they cannot tell, nor once they pass
            # 3 s again.
            lw.config.write_text(lw.config.read_text().replace("[1.0, 3.0]", "[1.5, 3.0]").replace(
                pg.dsn("pg1"), pg.dsn("pg1") + "&connect_timeout=5"))
            post_reload(lw)
            wait_for("a lag figure from the new timeline", lambda: node_view(lw)[2] is True, 10)
            wait_for("the rebuilt cluster's first cycles",
                     lambda: [c["cycle"] for c in lw.clusters() if c["cluster"] == "orders"][0] < 5,
                     10)
            wait_for("pg2's lag above the critical 3 s again", lambda: (node_view(lw)[1] or 0) > 3.5,
                     15)
            wait_cycles(lw, 4)
            assert sent(hook) == [("firing", 202)], "resolved or sent again after the rebuild"
            assert lw.value("lagwatch_alerts_firing", cluster="orders",
                            condition="lag_critical") == 1
        wait_for("the resolve", lambda: len(sent(hook)) >= 2, 20)
        assert sent(hook) == [("firing", 202), ("resolved", 202)]
        assert lw.value("lagwatch_notifications_total", receiver="hook", result="success") == 2
    finally:
        hook.stop()


def test_alerts_of_a_cluster_a_reload_removes_are_resolved_at_once(pg, lagwatch_factory, tmp_path):
    hook = Receiver()
    try:
        with paging_about_paused_pg2(pg, lagwatch_factory, tmp_path, hook) as lw:
            # "orders" leaves the file (its servers stay, watched as "users"): nobody watches
            # "orders" any more, so its alert must not stay open on the receiver while pg2 is
            # still paused. "users" then fires an alert of its own.
            lw.config.write_text(lw.config.read_text().replace('name = "orders"', 'name = "users"'))
            post_reload(lw)
            wait_for("the resolve of orders' alert", lambda: len(sent(hook)) >= 2, 10)
            posts = [r.json for r in hook.requests() if r.method == "POST"]
            assert posts[1]["status"] == "resolved", posts[1]
            assert [a["labels"]["cluster"] for a in posts[1]["alerts"]] == ["orders"], posts[1]
            assert lw.value("lagwatch_alerts_firing", cluster="orders", condition="lag_critical") is None
            wait_for("users' own alert", lambda: any(
                p["status"] == "firing" and p["alerts"][0]["labels"]["cluster"] == "users"
                for p in [r.json for r in hook.requests() if r.method == "POST"]), 25)
            assert "no longer watched" in lw.log_text()
    finally:
        hook.stop()


# ---------------------------------------------------------------- changed vs unchanged clusters

def cluster_state(lw, cluster):
    """(cycle, list generation, pg2's collection count) of one cluster."""
    cycle = [c["cycle"] for c in lw.clusters() if c["cluster"] == cluster][0]
    generation = lw.replicas(cluster)[1]["generation"]
    count = lw.value("lagwatch_collection_duration_seconds_count", cluster=cluster, node="pg2")
    return cycle, generation, count


def test_a_changed_cluster_is_rebuilt_and_an_unchanged_one_in_the_same_file_is_not(
        pg, lagwatch_factory):
    lw = lagwatch_factory(pg.toml(cluster="orders") + pg.toml(cluster="users"))
    for cluster in ("orders", "users"):
        wait_for("%s lists both standbys" % cluster,
                 lambda: len(lw.replicas(cluster)[1]["replicas"]) == 2, 10)
    wait_for("a few cycles", lambda: min(c["cycle"] for c in lw.clusters()) >= 4, 10)
    orders, users = cluster_state(lw, "orders"), cluster_state(lw, "users")

    # "users" gets other thresholds; "orders" only moves down the file.
    lw.config.write_text(moved(lw.config.read_text()).replace(
        'name = "users"', 'name = "users"\nthresholds = { lag_seconds = [2.0, 6.0] }'))
    post_reload(lw)

    # Rebuilt: cycles, collection counters and the list start again; the new generation comes
    # from the clock, so it is still higher than the old one.
    rebuilt = wait_for("users rebuilt", lambda: (lambda s: s[0] < users[0] and s)(
        cluster_state(lw, "users")), 10)
    assert rebuilt[2] < users[2], "collection counter did not restart: %s → %s" % (users, rebuilt)
    assert rebuilt[1] > users[1], "generation went back: %s → %s" % (users, rebuilt)
    assert lw.value("lagwatch_threshold_seconds", cluster="users", node="pg2",
                    severity="warning") == 2.0
    # Kept: the same generation, cycles and counters going on.
    kept = wait_for("orders goes on", lambda: (lambda s: s[0] > orders[0] and s)(
        cluster_state(lw, "orders")), 10)
    assert kept[2] > orders[2] and kept[1] == orders[1], (orders, kept)
    assert lw.value("lagwatch_threshold_seconds", cluster="orders", node="pg2",
                    severity="warning") == 1.0
    print("orders kept: cycle %d → %d, generation %d; users rebuilt: cycle %d → %d, "
          "generation %d → %d" % (orders[0], kept[0], orders[1], users[0], rebuilt[0],
                                  users[1], rebuilt[1]))


# ---------------------------------------------------------------- restart-only settings

NOT_APPLIED = re.compile(r'level=warning msg="config reload: these settings changed but are NOT '
                         r'applied[^"]*" not_applied=("(?:[^"\\]|\\.)*")$', re.M)


def not_applied_warnings(lw):
    """The settings each restart-only warning in the log names, one list per warning."""
    return [json.loads(m.group(1)).split("; ") for m in NOT_APPLIED.finditer(lw.log_text())]


def refused(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_a_reload_names_every_restart_only_setting_it_does_not_apply(pg, lagwatch_factory,
                                                                     tmp_path):
    router, hook = Receiver(), Receiver()
    try:
        hook_file = tmp_path / "hook.url"
        hook_file.write_text(hook.url + "\n")
        token = secrets.token_hex(12)
        hook2_file = tmp_path / "hook2.url"
        hook2_file.write_text("%s?token=%s\n" % (hook.url, token))
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.pem"],
                       cwd=tmp_path, check=True, capture_output=True, timeout=60)
        base = ('[routing]\nkeepalive = "5s"\n[[routing.push]]\nname = "router"\nurl = "%s"\n'
                '[alerting]\nstate_file = "%s"\ngroup_wait = "10s"\n'
                '[[alerting.receiver]]\nname = "hook"\ntype = "webhook"\nurl_file = "%s"\n'
                % (router.url, tmp_path / "alerts.json", hook_file)) + pg.toml()
        lw = lagwatch_factory(base)
        original = lw.config.read_text()
        new_port = free_port_block(2)
        agent_port = new_port + 1
        changed = original.replace(
            'listen = "127.0.0.1:%d"' % lw.port,
            'listen = "127.0.0.1:%d"\nagent_listen = "127.0.0.1:%d"' % (new_port, agent_port))
        changed = changed.replace('keepalive = "5s"', 'keepalive = "7s"').replace(
            'group_wait = "10s"', 'group_wait = "20s"')
        # Applied by the same reload: a cluster setting.
        changed = changed.replace('timeout = "400ms"', 'timeout = "400ms"\n'
                                  'thresholds = { lag_seconds = [0.75, 5.0] }')
        changed += ('[[alerting.receiver]]\nname = "hook2"\ntype = "webhook"\nurl_file = "%s"\n'
                    '[server.tls]\ncert_file = "%s"\nkey_file = "%s"\n'
                    '[server.basic_auth]\nusers = { admin = "sha256:%s" }\n'
                    % (hook2_file, tmp_path / "server.pem", tmp_path / "server.key", "ab" * 32))
        lw.config.write_text(changed)
        post_reload(lw)
        warnings = wait_for("the restart-only warning", lambda: not_applied_warnings(lw), 5)
        assert warnings == [[
            "[server] listen", "[server] agent_listen", "[server.tls] (added)",
            "[server.basic_auth] (added)", '[[routing.push]] "router": keepalive',
            "[alerting] group_wait", '[[alerting.receiver]] "hook2" (added)']], lw.log_text()
        # Indeed not applied: the old port answers plain HTTP without credentials, the new
        # ports are closed; the cluster's threshold did change.
        assert lw.get("/api/v1/clusters")[0] == 200
        assert refused(new_port) and refused(agent_port)
        wait_for("the threshold applied", lambda: lw.value(
            "lagwatch_threshold_seconds", cluster="orders", node="pg2", severity="warning") == 0.75, 5)
        assert lw.value("lagwatch_config_last_reload_successful") == 1
        assert token not in lw.log_text()

        # Back to the start's values (a cluster setting still changed): nothing more to say.
        lw.config.write_text(original.replace('timeout = "400ms"', 'timeout = "400ms"\n'
                                              'thresholds = { lag_seconds = [0.5, 5.0] }'))
        post_reload(lw)
        wait_for("the threshold applied", lambda: lw.value(
            "lagwatch_threshold_seconds", cluster="orders", node="pg2", severity="warning") == 0.5, 5)
        assert len(not_applied_warnings(lw)) == 1, lw.log_text()
        print(NOT_APPLIED.search(lw.log_text()).group(0))
    finally:
        router.stop()
        hook.stop()
