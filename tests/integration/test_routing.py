"""The lag-aware replica list against real PostgreSQL standbys: thresholds, hysteresis,
min_serving, primary fallback, read-your-writes, long polls, node health, failover."""
import json
import re
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import LAGWATCH_BIN, wait_for

INTERVAL = 0.5
ROUTING = """
[routing]
max_lag_seconds = 2.0
rise = 3
fall = 1
min_serving = 1
fallback_to_primary = true
"""


def members(lw):
    _, body = lw.replicas()
    return [(r["node"], r["degraded"]) for r in body["replicas"]]


@pytest.fixture
def lw(pg, lagwatch_factory):
    pg.run("wait-caught-up", pg.dir)
    w = lagwatch_factory(ROUTING + pg.toml())
    wait_for("both standbys listed", lambda: members(w) == [("pg2", False), ("pg3", False)], 10)
    return w


def test_list_body_headers_and_primary(lw):
    headers, body = lw.replicas()
    assert set(body) == {"cluster", "generation", "generated_at", "primary", "replicas", "fallback"}
    assert body["cluster"] == "orders" and body["fallback"] == "none"
    assert body["primary"]["node"] == "pg1" and "/" in body["primary"]["position"]
    assert headers["X-Lagwatch-Index"] == str(body["generation"])
    assert headers["ETag"] == 'W/"%d"' % body["generation"]
    assert body["generation"] > 1_600_000_000_000, "starts from epoch milliseconds"
    r = body["replicas"][0]
    assert set(r) >= {"node", "address", "state", "lag_seconds", "lag_bytes", "position",
                      "position_sampled_at", "weight", "degraded"}
    assert r["address"].startswith("127.0.0.1:")
    assert lw.value("lagwatch_replica_routable", node="pg2") == 1
    assert lw.value("lagwatch_cluster_routable_replicas", cluster="orders") == 2


def test_paused_replica_leaves_within_one_interval_of_crossing_and_rises_back(pg, lw):
    pg.scenario("pg2", "pause")
    try:
        # Lag crosses max_lag (2 s) about 2 s after the pause; it must be out by then + one
        # interval + the time to read the list.
        paused_at = time.time()
        wait_for("pg2 removed", lambda: members(lw) == [("pg3", False)], 6)
        assert time.time() - paused_at <= 2.0 + 2 * INTERVAL + 0.5
        assert lw.value("lagwatch_replica_routable", node="pg2") == 0
    finally:
        pg.scenario("pg2", "resume")
    def caught_up():
        lag = lw.value("lagwatch_replica_lag_seconds", node="pg2")
        return lag is not None and lag < 1 and time.time()

    caught_up_at = wait_for("pg2 caught up", caught_up, 10)
    back = wait_for("pg2 re-admitted", lambda: ("pg2", False) in members(lw) and time.time(), 10)
    # rise = 3: three good samples in a row, so not before ~2 intervals after catching up.
    assert back - caught_up_at >= 2 * INTERVAL - 0.3, (caught_up_at, back)


def test_every_replica_paused_keeps_least_lagged_degraded_then_primary(pg, lw):
    pg.scenario("pg3", "pause")
    time.sleep(1.0)
    pg.scenario("pg2", "pause")
    try:
        # Both lag; pg2 (paused later) is the least lagged and is kept, flagged degraded.
        wait_for("pg2 kept degraded", lambda: members(lw) == [("pg2", True)], 8)
        _, body = lw.replicas()
        assert body["fallback"] == "degraded"
        assert body["replicas"][0]["weight"] == 1
        # A router asking for at most 1 s of lag gets nobody, and is pointed at the primary.
        wait_for("pg2 over 1 s behind", lambda: lw.replicas()[1]["replicas"][0]["lag_seconds"] > 1.0, 8)
        _, strict = lw.replicas(query="?max_lag=1s")
        assert strict["replicas"] == [] and strict["fallback"] == "primary"
        assert strict["primary"]["node"] == "pg1"
    finally:
        pg.scenario("pg2", "resume")
        pg.scenario("pg3", "resume")
    wait_for("both back", lambda: members(lw) == [("pg2", False), ("pg3", False)], 15)


def test_min_position_read_your_writes(pg, lw):
    pg.scenario("pg3", "pause")
    try:
        time.sleep(0.5)
        pg.sql("pg1", "INSERT INTO writes(payload) VALUES ('token')")
        token = pg.sql("pg1", "SELECT pg_current_wal_lsn()")
        wait_for("pg2 has the write",
                 lambda: [r["node"] for r in lw.replicas(query="?min_position=" + token)[1]["replicas"]]
                 == ["pg2"], 5)
    finally:
        pg.scenario("pg3", "resume")
    wait_for("pg3 has it too",
             lambda: len(lw.replicas(query="?min_position=" + token)[1]["replicas"]) == 2, 10)


def test_bad_query_values_are_400_naming_the_parameter(lw):
    for query, parameter in [("?max_lag=soon", "max_lag"), ("?index=-1", "index"),
                             ("?wait=forever", "wait"), ("?min_position=not-an-lsn", "min_position")]:
        status, _, body = lw.request("/api/v1/clusters/orders/replicas" + query)
        assert status == 400, (query, body)
        assert json.loads(body)["parameter"] == parameter
    assert lw.request("/api/v1/clusters/nope/replicas")[0] == 404
    assert lw.request("/api/v1/clusters/orders/nodes/nope/health")[0] == 404


def test_long_poll_wakes_within_one_interval_of_a_change(pg, lw):
    headers, _ = lw.replicas()
    index = headers["X-Lagwatch-Index"]
    result = {}

    def poll():
        t = time.time()
        h, body = lw.replicas(query="?index=%s&wait=30s" % index)
        result.update(elapsed=time.time() - t, at=time.time(), index=h["X-Lagwatch-Index"],
                      members=[r["node"] for r in body["replicas"]])

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(1.0)
    assert t.is_alive(), "the poll must block while nothing changes"
    pg.scenario("pg3", "stop")
    try:
        # pg3's removal is what the poller must see; measure from when lagwatch saw it down.
        down_seen = wait_for("pg3 down", lambda: lw.value("lagwatch_node_up", node="pg3") == 0
                             and time.time(), 5)
        t.join(10)
        assert not t.is_alive()
        assert int(result["index"]) > int(index)
        assert result["members"] == ["pg2"]
        assert result["at"] - down_seen <= INTERVAL, result
    finally:
        pg.scenario("pg3", "start")
    wait_for("pg3 back", lambda: members(lw) == [("pg2", False), ("pg3", False)], 20)


def test_long_poll_without_change_returns_after_wait(lw):
    headers, _ = lw.replicas()
    t = time.time()
    h, _ = lw.replicas(query="?index=%s&wait=1s" % headers["X-Lagwatch-Index"])
    elapsed = time.time() - t
    assert 1.0 <= elapsed < 1.0 + 1.0 / 16 + 0.5, elapsed
    assert h["X-Lagwatch-Index"] == headers["X-Lagwatch-Index"]


def test_200_waiting_long_polls_do_not_block_metrics(lw):
    headers, _ = lw.replicas()
    url = "http://127.0.0.1:%d/api/v1/clusters/orders/replicas?index=%s&wait=8s" % (
        lw.port, headers["X-Lagwatch-Index"])
    done = []

    def poll():
        with urllib.request.urlopen(url, timeout=30) as r:
            done.append(r.status)

    threads = [threading.Thread(target=poll) for _ in range(200)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    for _ in range(5):
        t0 = time.time()
        assert "lagwatch_node_up" in lw.scrape()
        assert time.time() - t0 < 0.5
    assert len(done) == 0, "the polls are still parked"
    for t in threads:
        t.join(20)
    assert done == [200] * 200


def test_node_health_for_haproxy(pg, lw):
    def health(node, query=""):
        return lw.request("/api/v1/clusters/orders/nodes/%s/health%s" % (node, query))[0]

    def primary(node):
        return lw.request("/api/v1/clusters/orders/nodes/%s/primary" % node)[0]

    assert health("pg2") == 200
    assert health("pg1") == 503, "a primary is not a read replica"
    assert primary("pg1") == 200 and primary("pg2") == 503
    assert lw.request("/api/v1/clusters/orders/nodes/pg2/health?max_lag=x")[0] == 400
    pg.scenario("pg2", "pause")
    try:
        wait_for("pg2 fails a 1s bound", lambda: health("pg2", "?max_lag=1s") == 503, 5)
        wait_for("pg2 leaves the list", lambda: health("pg2") == 503, 6)
    finally:
        pg.scenario("pg2", "resume")
    wait_for("pg2 healthy again", lambda: health("pg2") == 200, 10)


# ---- Health states, hysteresis, GTID tokens and restarts on real servers --------------------

def state_of(lw, node):
    """The one state of lagwatch_replica_state{state} at 1 for `node`, from one scrape."""
    on = [dict(ls)["state"] for (n, ls), v in lw.samples().items()
          if n == "lagwatch_replica_state" and ("node", node) in ls and v == 1]
    assert len(on) == 1, on
    return on[0]


def test_apply_delay_between_the_thresholds_is_warning_and_back_to_ok(pg, lagwatch_factory):
    """Warning at 1 s, critical at 4 s; an apply delay of 2 s puts pg2's lag between them."""
    pg.run("wait-caught-up", pg.dir)
    lw = lagwatch_factory(ROUTING.replace("max_lag_seconds = 2.0", "max_lag_seconds = 10.0") +
                          pg.toml(extra="thresholds = { lag_seconds = [1.0, 4.0] }"))
    wait_for("pg2 ok", lambda: state_of(lw, "pg2") == "ok", 10)
    assert lw.value("lagwatch_threshold_seconds", node="pg2", severity="warning") == 1.0
    assert lw.value("lagwatch_threshold_seconds", node="pg2", severity="critical") == 4.0
    pg.scenario("pg2", "delay", "2")
    try:
        wait_for("pg2 warning", lambda: state_of(lw, "pg2") == "warning", 10)
        # Held there, not passing on to critical: six cycles, each one scraped.
        seen = []
        end = time.time() + 6 * INTERVAL
        while time.time() < end:
            seen.append((state_of(lw, "pg2"), lw.value("lagwatch_replica_lag_seconds",
                                                       node="pg2"), state_of(lw, "pg3")))
            time.sleep(0.1)
        assert {s for s, _, _ in seen} == {"warning"}, seen
        assert all(1.0 < lag < 4.0 for _, lag, _ in seen), seen
        assert {s for _, _, s in seen} == {"ok"}, "pg3 is not delayed: %r" % seen
        assert lw.value("lagwatch_replica_state", node="pg2", state="critical") == 0
    finally:
        pg.scenario("pg2", "delay", "0")
    wait_for("pg2 back to ok", lambda: state_of(lw, "pg2") == "ok", 10)
    assert lw.value("lagwatch_replica_state", node="pg2", state="warning") == 0


class CycleRecorder:
    """Scrapes /metrics every 0.1 s in a thread and keeps one record per collection cycle
    (by lagwatch_cluster_last_cycle_timestamp_seconds): pg2's lag, routable and the list
    generation, all from the same snapshot."""

    def __init__(self, lw, node):
        self.lw, self.node = lw, node
        self.cycles = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping.is_set():
            s = self.lw.samples()

            def one(name, **labels):
                found = [v for (n, ls), v in s.items()
                         if n == name and all((k, x) in ls for k, x in labels.items())]
                return found[0] if found else None

            at = one("lagwatch_cluster_last_cycle_timestamp_seconds")
            with self.lock:
                self.cycles.setdefault(at, (one("lagwatch_replica_lag_seconds", node=self.node),
                                            one("lagwatch_replica_routable", node=self.node),
                                            one("lagwatch_cluster_list_generation"),
                                            one("lagwatch_replica_applying", node=self.node),
                                            one("lagwatch_replica_lag_bytes", node=self.node)))
            time.sleep(0.1)

    def records(self):
        """[(cycle time, lag, routable, generation, applying, lag bytes)] oldest first."""
        with self.lock:
            return [(at,) + v for at, v in sorted(self.cycles.items())]

    def wait_cycles(self, what, predicate, count, timeout):
        """Waits for `count` new cycles in a row whose (lag, routable) satisfy `predicate`."""
        start = len(self.records())

        def done():
            new = self.records()[start:]
            return len(new) >= count and all(predicate(r) for r in new[-count:])

        wait_for(what, done, timeout, interval=0.05)

    def stop(self):
        self.stopping.set()
        self.thread.join(5)


def fit(record, max_lag):
    """Whether a cycle's sample qualifies for the list: lag within max_lag, and replay
    running unless caught up (a stopped replica behind the primary leaves at once)."""
    _, lag, _, _, applying, lag_bytes = record
    if lag is None or lag > max_lag:
        return False
    return applying != 0 or (lag == 0 and not lag_bytes)


def test_replica_oscillating_around_max_lag_does_not_flap(pg, lagwatch_factory):
    """pg2's replay is paused until a cycle sees its lag past max_lag (1 s), resumed until a
    cycle sees it caught up, and paused again, four times: its lag crosses max_lag eight
    times. fall = 1 removes it on the first unfit cycle (paused while behind the primary, which
    comes before the lag passes max_lag); rise = 6 keeps it out while its fit stretches (the
    cycles seen caught up and replaying between a resume and the next pause: one or two) are
    shorter than six cycles, and re-admits it on the sixth fit cycle in a row once it stays
    caught up.

    (An apply delay equal to max_lag does not oscillate: measured lag under
    recovery_min_apply_delay = 2 s holds at 1.96 s +- 0.01 s from cycle to cycle, so it
    sits on one side of any max_lag; pausing and resuming is what makes it cross.)"""
    rise, max_lag = 6, 1.0
    pg.run("wait-caught-up", pg.dir)
    lw = lagwatch_factory(ROUTING.replace("max_lag_seconds = 2.0", "max_lag_seconds = %s" %
                                          max_lag).replace("rise = 3", "rise = %d" % rise) +
                          pg.toml())
    wait_for("both standbys listed", lambda: members(lw) == [("pg2", False), ("pg3", False)], 10)
    rec = CycleRecorder(lw, "pg2")
    try:
        rec.wait_cycles("a first record", lambda r: r[2] == 1, 1, 5)
        oscillation_start = rec.records()[-1][0]
        for _ in range(4):
            pg.scenario("pg2", "pause")
            rec.wait_cycles("pg2's lag above max_lag",
                            lambda r: r[1] is not None and r[1] > max_lag, 1, 10)
            pg.scenario("pg2", "resume")
            rec.wait_cycles("pg2 caught up",
                            lambda r: r[1] is not None and r[1] <= max_lag, 1, 10)
        oscillation_end = rec.records()[-1][0]
        # Left alone: re-admitted after `rise` good cycles.
        rec.wait_cycles("pg2 re-admitted", lambda r: r[2] == 1, 1, 15)
    finally:
        pg.scenario("pg2", "resume")
        rec.stop()
    records = rec.records()
    during = [r for r in records if oscillation_start <= r[0] <= oscillation_end]
    # Every cycle was seen (else a streak could hide between two scrapes).
    cycle_gaps = [round(b[0] - a[0], 3) for a, b in zip(records, records[1:])]
    assert max(cycle_gaps) <= 1.5 * INTERVAL, cycle_gaps
    good = [fit(r, max_lag) for r in during]
    crossings = sum(a != b for a, b in zip(good, good[1:]))
    assert crossings >= 8, during
    routable = [r[2] for r in during]
    changes = sum(a != b for a, b in zip(routable, routable[1:]))
    assert changes == 1 and routable[0] == 1 and routable[-1] == 0, during
    # fall = 1: out on the first unfit cycle (replay paused while behind).
    first_bad = good.index(False)
    assert routable[first_bad] == 0 and routable[first_bad - 1] == 1, during
    # The list's generation moved once for the oscillation and once for the return.
    generations = [r[3] for r in records]
    assert len(set(generations)) == 3 and generations == sorted(generations), records
    # rise = 5: re-admitted on the fifth good cycle in a row, not before.
    back = next(i for i in range(len(records)) if records[i][0] > oscillation_end
                and records[i][2] == 1)
    streak = 0
    for r in reversed(records[:back + 1]):
        if not fit(r, max_lag):
            break
        streak += 1
    assert streak == rise, records[back - rise - 1:back + 1]
    assert all(r[2] == 0 for r in records[back - rise + 1:back]), records[back - rise:back + 1]
    print("".join("+" if g else "-" for g in good), "".join(str(int(x)) for x in routable))
    print("oscillation: %d cycles, max_lag crossed %d times, list changed %d time(s); "
          "re-admitted on good cycle %d" % (len(during), crossings, changes, streak))


def test_min_position_with_a_mariadb_gtid_token(mysql, lagwatch_factory):
    """Read-your-writes on MariaDB: the token is the primary's GTID position right after a
    write; only replicas whose executed GTIDs reach it are listed for it."""
    mysql.run("wait-caught-up", mysql.dir)
    lw = lagwatch_factory(ROUTING.replace("max_lag_seconds = 2.0", "max_lag_seconds = 60.0") +
                          mysql.toml())
    wait_for("both replicas listed", lambda: members(lw) == [("db2", False), ("db3", False)], 15)
    # db3 applies 30 s late: listed (max_lag 60 s), but without the write for a while. (A
    # stopped SQL thread would take it off the list: it could not catch up by itself.)
    mysql.scenario("db3", "delay", "30")
    try:
        # Setting the delay restarts db3's replica threads: wait until it is listed again.
        wait_for("both replicas listed with db3 delayed",
                 lambda: members(lw) == [("db2", False), ("db3", False)], 15)
        out = mysql.sql("db1", "INSERT INTO writes(payload) VALUES ('token'); "
                               "SELECT @@last_gtid, @@gtid_current_pos")
        last_gtid, current_pos = out.split("\t")
        assert re.fullmatch(r"\d+-\d+-\d+", last_gtid), out
        domain, _, seq = last_gtid.split("-")
        assert "%s-" % domain in current_pos, out

        def listed(token):
            headers, body = lw.replicas(query="?min_position=" + token)
            return [r["node"] for r in body["replicas"]], body, headers

        for token in (last_gtid, current_pos):
            wait_for("db2 alone has %s" % token, lambda: listed(token)[0] == ["db2"], 5)
        nodes, body, headers = listed(last_gtid)
        db2 = body["replicas"][0]
        assert int(re.search(r"(?:^|,)%s-\d+-(\d+)" % domain, db2["gtid_position"]).group(1)) \
            >= int(seq), db2
        assert headers["X-Lagwatch-Index"] == str(body["generation"])
        # db3 is still in the list, only not for this token.
        _, everyone = lw.replicas()
        db3 = [r for r in everyone["replicas"] if r["node"] == "db3"]
        assert db3, everyone
        assert int(re.search(r"(?:^|,)%s-\d+-(\d+)" % domain, db3[0]["gtid_position"]).group(1)) \
            < int(seq), db3
    finally:
        mysql.scenario("db3", "delay", "0")
    wait_for("db3 has it too", lambda: listed(last_gtid)[0] == ["db2", "db3"], 15)


def test_generation_does_not_go_back_across_a_restart(pg, lagwatch_factory, tmp_path):
    pg.run("wait-caught-up", pg.dir)
    lw = lagwatch_factory(ROUTING + pg.toml())
    wait_for("both standbys listed", lambda: members(lw) == [("pg2", False), ("pg3", False)], 10)
    # A change just before the stop: the first instance's generation is as new as it gets.
    pg.scenario("pg3", "stop")
    try:
        wait_for("pg3 removed", lambda: members(lw) == [("pg2", False)], 10)
        before = int(lw.replicas()[0]["X-Lagwatch-Index"])
        lw.stop()
        # A new process on the same config file and port.
        lw.log = open(tmp_path / "restarted.log", "w+")
        lw.proc = subprocess.Popen([LAGWATCH_BIN, "--config", str(lw.config)],
                                   stdout=lw.log, stderr=subprocess.STDOUT)
        wait_for("the new lagwatch ready", lambda: ready(lw), 15)
        headers, body = lw.replicas()
        after = int(headers["X-Lagwatch-Index"])
        assert after > before, (before, after, lw.log_text())
        assert [r["node"] for r in body["replicas"]] == ["pg2"]
    finally:
        pg.scenario("pg3", "start")
    wait_for("pg3 back", lambda: members(lw) == [("pg2", False), ("pg3", False)], 20)
    assert int(lw.replicas()[0]["X-Lagwatch-Index"]) > after


def ready(lw):
    try:
        return lw.get("/-/ready")[0] == 200
    except OSError:
        return False


def test_node_health_errors_name_the_parameter_and_the_missing_node(lw):
    for endpoint in ("health", "primary"):
        status, headers, body = lw.request(
            "/api/v1/clusters/orders/nodes/pg2/%s?max_lag=x" % endpoint)
        assert status == 400 and headers["Content-Type"] == "application/json", (status, body)
        error = json.loads(body)
        assert error["parameter"] == "max_lag" and "max_lag" in error["error"], error
    for endpoint in ("health", "primary"):
        status, headers, body = lw.request("/api/v1/clusters/orders/nodes/nope/%s" % endpoint)
        assert status == 404 and headers["Content-Type"] == "application/json", (status, body)
        assert "nope" in json.loads(body)["error"], body
    status, _, body = lw.request("/api/v1/clusters/nope/nodes/pg1/primary")
    assert status == 404 and "nope" in json.loads(body)["error"], body
