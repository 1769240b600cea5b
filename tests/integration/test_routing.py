"""The lag-aware replica list against real PostgreSQL standbys: thresholds, hysteresis,
min_serving, primary fallback, read-your-writes, long polls, node health, failover."""
import json
import threading
import time
import urllib.request

import pytest

from conftest import wait_for

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
