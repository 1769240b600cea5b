"""Real HAProxy 2.6 running examples/haproxy/haproxy.cfg in front of real PostgreSQL standbys,
steered by lagwatch's HTTP health checks and agent-check: who gets new connections, and with
which weight. Measured times are printed (run with -s to see them)."""
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import free_port_block, wait_for
from haproxy_process import HAPROXY, Haproxy, example_env, serving

PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
INTERVAL = 0.5       # lagwatch's cycle
CHECK_INTER = 1.0    # HAProxy's inter and agent-inter in the example
MAX_LAG = 2.0

def report(what, seconds):
    print("\n[measured] %s: %.2f s" % (what, seconds))


@pytest.fixture
def stack(pg, lagwatch_factory, tmp_path):
    """lagwatch (agent on), then HAProxy pointed at it and at pg1..pg3; both stopped by PID."""
    if not os.path.exists(HAPROXY):
        pytest.fail("haproxy is not installed; run scripts/setup")
    pg.run("wait-caught-up", pg.dir)
    agent_port = free_port_block(1)
    # min_serving = 0: with every standby lagging, the list empties and HAProxy falls back to
    # the primary (with 1, lagwatch keeps the least-lagged standby at weight 1% instead).
    lw = lagwatch_factory('agent_listen = "127.0.0.1:%d"\n' % agent_port +
                          "[routing]\nmax_lag_seconds = %.1f\nrise = 2\nfall = 1\n"
                          "min_serving = 0\nfallback_to_primary = true\n" % MAX_LAG +
                          pg.toml(interval="500ms"))
    lw.agent_port = agent_port
    socket_dir = tempfile.mkdtemp(prefix="lw-hap-")  # short: sun_path holds 107 bytes
    reads_port, writes_port = free_port_block(1), free_port_block(1)
    env = example_env(os.path.join(socket_dir, "stats.sock"), reads_port, writes_port, lw.port,
                      agent_port, {n: pg.port(n) for n in ("pg1", "pg2", "pg3")})
    hap = Haproxy(env, tmp_path / "haproxy.log", env["HAPROXY_STATS_SOCKET"], reads_port,
                  writes_port)

    def ready():
        if hap.exited():
            pytest.fail(hap.exited())
        return hap.checked()

    try:
        started = time.time()
        wait_for("HAProxy checked every server, pg2 and pg3 serving at weight 100", ready, 15)
        report("HAProxy start -> every check answered", time.time() - started)
        yield lw, hap
    finally:
        hap.stop()
        shutil.rmtree(socket_dir, ignore_errors=True)


def connect_port(pg, port):
    """The PostgreSQL port a new connection through `port` lands on."""
    with open(pg.password_file) as f:
        password = f.read().strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGPASSWORD=password, PGCONNECT_TIMEOUT="5")
    r = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-A", "-t", "-h", "127.0.0.1",
                        "-p", str(port), "-U", "lagwatch", "-d", "postgres",
                        "-c", "SELECT inet_server_port()"],
                       env=env, capture_output=True, text=True, timeout=15)
    assert r.returncode == 0, "psql through port %d failed: %s" % (port, r.stderr)
    return int(r.stdout.strip())


def landed(pg, hap, count=10):
    """The nodes `count` new read connections landed on, in order."""
    by_port = {pg.port(n): n for n in pg.nodes}
    return [by_port[connect_port(pg, hap.reads_port)] for _ in range(count)]


def agent(lw, request):
    with socket.create_connection(("127.0.0.1", lw.agent_port), timeout=5) as s:
        s.sendall(request.encode())
        return s.makefile().read()


def members(lw):
    return [r["node"] for r in lw.replicas()[1]["replicas"]]


def test_agent_answers_one_line_per_connection(stack):
    lw, _ = stack
    # A caught-up standby under the fixture's writes: full weight, or nearly (its lag in that
    # cycle may be a few milliseconds, on a loaded machine tens).
    answer = agent(lw, "orders/pg2\n")
    m = re.fullmatch(r"up ready (\d+)%\n", answer)
    assert m and 90 <= int(m.group(1)) <= 100, answer
    assert agent(lw, "orders/pg1\n") == "drain\n", "a primary is not a read replica"
    assert agent(lw, "orders/pg9\n") == 'down #unknown cluster/node "orders/pg9"\n'


def test_reads_reach_both_standbys_and_writes_the_primary(pg, stack):
    _, hap = stack
    assert set(landed(pg, hap, 10)) == {"pg2", "pg3"}
    assert connect_port(pg, hap.writes_port) == pg.port("pg1")
    writes = {n: r["status"] for n, r in hap.servers("pg-writes").items()}
    assert writes == {"pg1": "UP", "pg2": "DOWN", "pg3": "DOWN"}, writes
    # The read fallback tracks pg-writes: only the current primary is a usable backup.
    backups = {n: r["status"] for n, r in hap.servers().items() if n.endswith("-primary")}
    assert backups["pg1-primary"] == "UP", backups
    assert not backups["pg2-primary"].startswith("UP") and not backups["pg3-primary"].startswith("UP"), backups


def test_paused_standby_stops_getting_new_connections_then_comes_back(pg, stack):
    lw, hap = stack
    pg.scenario("pg2", "pause")
    try:
        paused = time.time()
        left_list = wait_for("pg2 leaves lagwatch's list",
                             lambda: "pg2" not in members(lw) and time.time(), 8)
        out = wait_for("HAProxy stops using pg2", lambda: not serving(hap.state("pg2"))
                       and time.time(), 5, interval=0.05)
        report("pause -> pg2 out of lagwatch's list (lag crosses %.0f s)" % MAX_LAG,
               left_list - paused)
        report("pg2 out of the list -> out of HAProxy", out - left_list)
        report("pause -> no new connections to pg2", out - paused)
        assert out - left_list <= CHECK_INTER + 0.5, hap.log_text()
        assert out - paused <= MAX_LAG + 2 * INTERVAL + CHECK_INTER + 1.0
        assert landed(pg, hap, 10) == ["pg3"] * 10
        assert serving(hap.state("pg3"))
    finally:
        pg.scenario("pg2", "resume")
    resumed = time.time()
    back = wait_for("HAProxy serves pg2 again", lambda: serving(hap.state("pg2")) and time.time(),
                    15, interval=0.05)
    report("resume -> pg2 back in HAProxy", back - resumed)
    wait_for("a new connection reaches pg2", lambda: "pg2" in landed(pg, hap, 1), 5)
    report("resume -> a new connection on pg2", time.time() - resumed)


def test_every_standby_paused_reads_go_to_the_primary(pg, stack):
    lw, hap = stack
    pg.scenario("pg3", "pause")
    pg.scenario("pg2", "pause")
    try:
        paused = time.time()
        wait_for("both out of HAProxy", lambda: not serving(hap.state("pg2"))
                 and not serving(hap.state("pg3")), 8, interval=0.05)
        report("both paused -> reads fall back to the primary", time.time() - paused)
        assert lw.replicas()[1]["fallback"] == "primary"
        assert landed(pg, hap, 5) == ["pg1"] * 5
    finally:
        pg.scenario("pg2", "resume")
        pg.scenario("pg3", "resume")
    wait_for("both standbys serving again", lambda: serving(hap.state("pg2"))
             and serving(hap.state("pg3")), 15)
    assert set(landed(pg, hap, 10)) == {"pg2", "pg3"}


def test_agent_weight_follows_lag(pg, stack):
    lw, hap = stack
    pg.scenario("pg2", "delay", "1")
    try:
        # About 1 s of lag against max_lag 2 s: weight 100 - 90 * 1/2, i.e. about 55. The lag
        # climbs from 0 to 1 s over the first second and HAProxy asks the agent once per
        # CHECK_INTER, so the first lowered weights belong to a smaller lag: wait until
        # HAProxy's weight is the one lagwatch's list gives now, at the settled lag.
        def settled():
            state, weight = hap.state("pg2")
            if state != "UP" or weight > 80:
                return None
            lag = lw.value("lagwatch_replica_lag_seconds", node="pg2")
            listed = {r["node"]: r["weight"] for r in lw.replicas()[1]["replicas"]}
            return (weight, lag, listed["pg2"]) if lag >= 0.7 and abs(weight - listed["pg2"]) <= 10 else None
        weight, lag, listed = wait_for("pg2's weight lowered to the list's", settled, 10)
        expected = round(100 - 90 * min(lag, MAX_LAG) / MAX_LAG)
        print("\n[measured] delay 1 s: lag %.2f s, HAProxy weight %d, list weight %d, formula %d"
              % (lag, weight, listed, expected))
        assert 30 <= weight <= 80
        assert abs(listed - expected) <= 8, (listed, lag)
        assert abs(weight - expected) <= 15, (weight, lag)
        assert hap.state("pg3") == ("UP", 100), "pg3 keeps its full weight"
        assert set(landed(pg, hap, 10)) == {"pg2", "pg3"}, "a lagging but listed replica serves"
    finally:
        pg.scenario("pg2", "delay", "0")
    wait_for("pg2 back at full weight", lambda: hap.state("pg2") == ("UP", 100), 10)


def test_unreachable_standby_is_down_with_the_agents_reason(pg, stack):
    _, hap = stack
    pg.scenario("pg3", "stop")
    try:
        row = wait_for("pg3 down via the agent",
                       lambda: (hap.servers().get("pg3", {}).get("status", "").startswith("DOWN")
                                and "unreachable" in hap.servers()["pg3"]["last_agt"]
                                and hap.servers()["pg3"]), 8)
        print("\n[measured] HAProxy's last agent result for stopped pg3: %r" % row["last_agt"])
        assert landed(pg, hap, 5) == ["pg2"] * 5
    finally:
        pg.scenario("pg3", "start")
    wait_for("pg3 serving again", lambda: serving(hap.state("pg3")), 20)
