"""examples/app-router against real lagwatch and PostgreSQL: the router's list follows
lagwatch's through long polls, it picks only listed replicas (by weight), falls back to the
primary, and keeps its last list while backing off when lagwatch is gone. Measured times are
printed (run with -s to see them)."""
import datetime
import json
import os
import random
import select
import subprocess
import sys
import time

import pytest

from conftest import ROOT, wait_for
from processes import stop_process

ROUTER_DIR = os.path.join(ROOT, "examples", "app-router")
sys.path.insert(0, ROUTER_DIR)
import lagwatch_router  # noqa: E402  (the example is a script, not a package)
from lagwatch_router import NoReadTarget, ReplicaRouter, Target, choose  # noqa: E402

INTERVAL = 0.5
MAX_LAG = 2.0
ROUTING = """
[routing]
max_lag_seconds = %.1f
rise = 2
fall = 1
min_serving = 0
fallback_to_primary = true
""" % MAX_LAG


def report(what, seconds):
    print("\n[measured] %s: %.3f s" % (what, seconds))


@pytest.fixture
def lw(pg, lagwatch_factory):
    pg.run("wait-caught-up", pg.dir)
    w = lagwatch_factory(ROUTING + pg.toml(interval="500ms"))
    wait_for("both standbys listed",
             lambda: [r["node"] for r in w.replicas()[1]["replicas"]] == ["pg2", "pg3"], 10)
    return w


@pytest.fixture
def router(lw):
    seen = []  # (time.time(), body) of every list the router took
    r = ReplicaRouter("http://127.0.0.1:%d" % lw.port, "orders", wait=5.0,
                      on_change=lambda body: seen.append((time.time(), body)),
                      rng=random.Random(7))
    r.seen = seen
    r.start()
    assert r.wait_for_list(5) is not None, "no list within 5 s (errors: %r)" % r.last_error
    yield r
    r.stop()


def listed(router):
    return [r["node"] for r in router.current()["replicas"]]


def picks(router, count=200):
    return [router.pick() for _ in range(count)]


def propagation(body, received_at):
    """Seconds from lagwatch producing this generation to the router holding it."""
    produced = datetime.datetime.fromisoformat(body["generated_at"].replace("Z", "+00:00"))
    return received_at - produced.timestamp()


def test_router_follows_the_list_through_a_pause_and_picks_only_listed_replicas(pg, router):
    assert listed(router) == ["pg2", "pg3"]
    chosen = picks(router)
    assert {t.node for t in chosen} == {"pg2", "pg3"}
    assert all(t.role == "replica" and t.port == pg.port(t.node) for t in chosen)

    pg.scenario("pg2", "pause")
    try:
        paused = time.time()
        shrunk = wait_for("the router drops pg2", lambda: listed(router) == ["pg3"] and time.time(),
                          8, interval=0.02)
        received_at, body = router.seen[-1]
        report("pause -> router's list without pg2 (lag crosses %.0f s)" % MAX_LAG,
               shrunk - paused)
        report("lagwatch new generation -> router has it (long poll)",
               propagation(body, received_at))
        assert shrunk - paused <= MAX_LAG + 2 * INTERVAL + 1.0
        assert propagation(body, received_at) < 0.5, "a long poll answers at once"
        assert {t.node for t in picks(router)} == {"pg3"}
    finally:
        pg.scenario("pg2", "resume")
    resumed = time.time()
    grown = wait_for("the router lists pg2 again",
                     lambda: listed(router) == ["pg2", "pg3"] and time.time(), 10, interval=0.02)
    report("resume -> router's list with pg2 again (rise = 2)", grown - resumed)
    assert grown - resumed <= 5.0
    assert {t.node for t in picks(router)} == {"pg2", "pg3"}
    generations = [body["generation"] for _, body in router.seen]
    assert generations == sorted(generations) and len(set(generations)) == len(generations)


def test_router_falls_back_to_the_primary_when_no_replica_is_listed(pg, router):
    pg.scenario("pg3", "pause")
    pg.scenario("pg2", "pause")
    try:
        wait_for("an empty list with primary fallback",
                 lambda: router.current()["fallback"] == "primary", 8, interval=0.05)
        assert router.current()["replicas"] == []
        assert set(picks(router, 20)) == {Target("pg1", "127.0.0.1:%d" % pg.port("pg1"), "primary")}
    finally:
        pg.scenario("pg2", "resume")
        pg.scenario("pg3", "resume")
    wait_for("replicas again", lambda: listed(router) == ["pg2", "pg3"], 15, interval=0.05)
    assert {t.role for t in picks(router)} == {"replica"}


def test_router_keeps_its_last_list_and_backs_off_while_lagwatch_is_gone(lw, router):
    before = router.current()
    errors_before = router.errors
    lw.stop()
    stopped = time.time()
    wait_for("a failed poll", lambda: router.errors > errors_before, 10, interval=0.05)
    time.sleep(3.0)  # a fixed observation window: count the retries inside it
    retries = router.errors - errors_before
    print("\n[measured] failed polls in the %.1f s after lagwatch stopped: %d"
          % (time.time() - stopped, retries))
    assert 1 <= retries <= 10, "exponential backoff from 0.2 s: a handful, not hundreds"
    assert router.current() is before, "the last good list is kept"
    assert router.age() >= 3.0
    assert router.pick().node in ("pg2", "pg3")


def test_choose_follows_weights_and_refuses_without_a_target():
    body = {"replicas": [{"node": "a", "address": "10.0.0.2:5432", "weight": 90},
                         {"node": "b", "address": "[::1]:5433", "weight": 10}],
            "primary": {"node": "p", "address": "10.0.0.1:5432"}, "fallback": "none"}
    rng = random.Random(3)
    nodes = [choose(body, rng).node for _ in range(10000)]
    assert 0.87 <= nodes.count("a") / len(nodes) <= 0.93
    target = choose({**body, "replicas": body["replicas"][1:]}, rng)
    assert (target.host, target.port) == ("::1", 5433)
    with pytest.raises(NoReadTarget):
        choose({**body, "replicas": []}, rng)
    assert choose({**body, "replicas": [], "fallback": "primary"}, rng) == \
        Target("p", "10.0.0.1:5432", "primary")


def test_router_script_prints_each_new_list(lw):
    proc = subprocess.Popen([sys.executable, lagwatch_router.__file__, "--url",
                             "http://127.0.0.1:%d" % lw.port, "--wait", "5", "orders"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        assert ready, "no output within 10 s"
        line = json.loads(proc.stdout.readline())
        assert [node for node, _ in line["replicas"]] == ["pg2", "pg3"], line
        assert line["fallback"] == "none"
    finally:
        stop_process(proc, grace_seconds=5)
