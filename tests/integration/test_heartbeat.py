"""Heartbeat lag (opt-in): lagwatch writes its clock on the primary and reads it on replicas,
on both engines, with the least-privilege grants the docs give; or (read mode) it only reads
a table pt-heartbeat keeps."""
import os
import subprocess
import threading
import time

import pytest

from conftest import assert_delay_in_force, wait_for
from processes import wait_or_kill

SETUP = {
    "postgres": ["CREATE SCHEMA IF NOT EXISTS lagwatch",
                 "CREATE TABLE IF NOT EXISTS lagwatch.heartbeat "
                 "(cluster text PRIMARY KEY, ts double precision NOT NULL)",
                 "GRANT USAGE ON SCHEMA lagwatch TO lagwatch",
                 "GRANT SELECT, INSERT, UPDATE ON lagwatch.heartbeat TO lagwatch"],
    "mysql": ["CREATE DATABASE IF NOT EXISTS lagwatch",
              "CREATE TABLE IF NOT EXISTS lagwatch.heartbeat "
              "(cluster VARCHAR(64) PRIMARY KEY, ts DOUBLE NOT NULL)",
              "GRANT SELECT, INSERT, UPDATE ON lagwatch.heartbeat TO 'lagwatch'@'127.0.0.1'"],
}
DELAY = {"postgres": "delay", "mysql": "delay"}


@pytest.fixture(params=["postgres", "mysql"])
def servers(request):
    s = request.getfixturevalue("pg" if request.param == "postgres" else "mysql")
    for statement in SETUP[s.engine]:
        s.sql(s.nodes[0], statement)
    s.run("wait-caught-up", s.dir)
    return s


def test_heartbeat_lag_tracks_apply_delay(servers, lagwatch_factory):
    s = servers
    r1, r2 = s.nodes[1], s.nodes[2]
    # lagwatch connects to the database the table was created in (MariaDB names it in SQL).
    if s.engine == "postgres":
        s.database = "lagwatch_demo"
    try:
        config = s.toml(extra='heartbeat = { mode = "write", interval = "100ms" }')
    finally:
        if s.engine == "postgres":
            s.database = "postgres"
    lw = lagwatch_factory(config)

    def hb(node):
        return lw.value("lagwatch_replica_heartbeat_lag_seconds", cluster="orders", node=node)

    wait_for("heartbeat visible", lambda: hb(r1) is not None and hb(r2) is not None, 10)
    seen = [hb(r1) for _ in range(10) if time.sleep(0.2) is None]
    assert max(seen) < 0.35, seen  # one heartbeat interval + one collection's worth
    assert lw.value("lagwatch_heartbeat_writes_total", cluster="orders", result="success") > 5

    s.scenario(r1, DELAY[s.engine], "3")
    try:
        time.sleep(5)
        seen = s.lag_against_truth(lw, r1, 3, field="heartbeat_lag_seconds")
        # The truth is probed (see test_lag_scenarios: MariaDB's saws through [2, 4) s). A
        # heartbeat is at most one heartbeat interval (100 ms) old when it is written, and the
        # probe resolves to one inter-row gap (50 ms).
        assert_delay_in_force(seen, 3)
        assert all(v is not None and low - 0.1 <= v <= high + 0.1 + 0.1 for v, low, high in seen), seen
        assert hb(r2) < 0.35
    finally:
        s.scenario(r1, DELAY[s.engine], "0")
    wait_for("back to near zero", lambda: (hb(r1) if hb(r1) is not None else 99) < 0.35, 10)


def test_missing_heartbeat_table_costs_only_the_heartbeat(pg, lagwatch_factory):
    lw = lagwatch_factory(pg.toml(extra='heartbeat = { mode = "read", table = "nowhere.heartbeat" }'))
    wait_for("measured", lambda: lw.value("lagwatch_replica_lag_seconds", node="pg2") is not None, 10)
    assert lw.value("lagwatch_node_up", node="pg2") == 1
    assert lw.value("lagwatch_replica_heartbeat_lag_seconds", node="pg2") is None
    node = [n for n in lw.clusters()[0]["nodes"] if n["name"] == "pg2"][0]
    assert "nowhere" in node["channels"][0]["heartbeat_error"], node


# pt-heartbeat's own table (pt-heartbeat --create-table), in the database read mode reads by
# default (docs/configuration.md: table = "percona.heartbeat").
PT_HEARTBEAT_SETUP = [
    "CREATE DATABASE IF NOT EXISTS percona",
    "CREATE TABLE IF NOT EXISTS percona.heartbeat (ts varchar(26) NOT NULL, "
    "server_id int unsigned NOT NULL PRIMARY KEY, file varchar(255) DEFAULT NULL, "
    "position bigint unsigned DEFAULT NULL, relay_master_log_file varchar(255) DEFAULT NULL, "
    "exec_master_log_pos bigint unsigned DEFAULT NULL)",
    "GRANT SELECT ON percona.heartbeat TO 'lagwatch'@'127.0.0.1'",
]
# What pt-heartbeat --update --utc stamps: the UTC time with microseconds, 'T'-separated.
PT_TS = "DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%dT%H:%i:%s.%f')"


class PtHeartbeat:
    """Stands in for `pt-heartbeat --update --utc --interval 0.1` on the MariaDB primary: one
    persistent client connection (as pt-heartbeat keeps) updating the primary's row every
    `every` s. Records when each update was sent, so assertions can allow for the gaps a busy
    machine puts between them instead of assuming 100 ms."""

    def __init__(self, servers, node, every=0.1):
        env = dict(line.split("=", 1) for line in
                   open(os.path.join(servers.dir, "env")).read().splitlines() if "=" in line)
        socket_path = env["MYSQL_SOCKET_%s" % node].strip('"')
        # The fixture's admin account: root, or the OS user when not run as root.
        admin = "root" if os.getuid() == 0 else os.environ.get("USER", "root")
        servers.sql(node, "INSERT INTO percona.heartbeat (ts, server_id) VALUES (%s, @@server_id) "
                          "ON DUPLICATE KEY UPDATE ts = VALUES(ts)" % PT_TS)
        self.client = subprocess.Popen(
            ["mariadb", "--no-defaults", "-S", socket_path, "-u", admin, "-N", "-B"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.every = every
        self.sent = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        statement = "UPDATE percona.heartbeat SET ts = %s WHERE server_id = @@server_id;\n" % PT_TS
        next_at = time.monotonic()
        while not self.stopping.is_set():
            try:
                self.client.stdin.write(statement)
                self.client.stdin.flush()
            except BrokenPipeError:
                return  # the client failed; stop() reports its error
            self.sent.append(time.time())
            next_at += self.every
            self.stopping.wait(max(0.0, next_at - time.monotonic()))

    def largest_gap(self, since):
        """The longest time between two updates sent after `since` (at least `every`)."""
        times = [t for t in self.sent if t >= since]
        return max([b - a for a, b in zip(times, times[1:])] + [self.every])

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=5)
        try:
            self.client.stdin.close()  # the client exits at end of input
        except BrokenPipeError:
            pass  # it already exited; stderr says why
        wait_or_kill(self.client, grace_seconds=10)
        errors = self.client.stderr.read()
        self.client.stderr.close()
        assert self.client.returncode == 0 and not errors, (self.client.returncode, errors)


def test_read_mode_reads_a_pt_heartbeat_table(mysql, lagwatch_factory):
    s = mysql
    primary, r1, r2 = s.nodes
    for statement in PT_HEARTBEAT_SETUP:
        s.sql(primary, statement)
    s.run("wait-caught-up", s.dir)
    writer = PtHeartbeat(s, primary)
    try:
        lw = lagwatch_factory(s.toml(extra='heartbeat = { mode = "read" }'))

        def hb(node):
            return lw.value("lagwatch_replica_heartbeat_lag_seconds", cluster="orders", node=node)

        wait_for("heartbeat visible", lambda: hb(r1) is not None and hb(r2) is not None, 10)
        # Read mode writes nothing: no writer, no writes counted.
        assert lw.value("lagwatch_heartbeat_writes_total", cluster="orders") is None
        started = time.time()
        seen = [(hb(r1), hb(r2)) for _ in range(10) if time.sleep(0.2) is None]
        # Caught up: at most one gap between two updates old, plus what one collection and
        # replication take. The gap is measured, not assumed.
        bound = writer.largest_gap(started - 1) + 0.25
        assert all(v is not None and 0 <= v < bound for pair in seen for v in pair), (seen, bound)

        # A row the replica itself keeps fresh — pt-heartbeat --update run on it for its own
        # replicas, or a clock far ahead — sits beside the primary's. Reading the newest row
        # of the table would take it and report no lag; lagwatch reads its source's row only.
        s.sql(r1, "SET sql_log_bin = 0; INSERT INTO percona.heartbeat (ts, server_id) "
                  "VALUES ('2099-01-01T00:00:00.000000', @@server_id)")
        s.scenario(r1, "delay", "3")
        try:
            time.sleep(5)
            started = time.time()
            seen = s.lag_against_truth(lw, r1, 3, field="heartbeat_lag_seconds")
            gap = writer.largest_gap(started - 5)
            # Truth probed as in test_heartbeat_lag_tracks_apply_delay (MariaDB's apply delay
            # saws through [2, 4) s). pt-heartbeat's row and the load's rows wait alike; the
            # newest visible heartbeat is at most one update gap older than the newest row, and
            # the probe resolves to one inter-row gap (50 ms).
            assert_delay_in_force(seen, 3)
            assert all(v is not None and low - 0.1 <= v <= high + gap + 0.1
                       for v, low, high in seen), (seen, gap)
            assert hb(r2) < writer.largest_gap(started) + 0.25, "the other replica is unaffected"
        finally:
            s.scenario(r1, "delay", "0")
        wait_for("back to near zero", lambda: (hb(r1) if hb(r1) is not None else 99) < 0.35, 10)
        node = [n for n in lw.clusters()[0]["nodes"] if n["name"] == r1][0]
        assert not node["channels"][0].get("heartbeat_error"), node
    finally:
        writer.stop()
        s.sql(primary, "DROP DATABASE IF EXISTS percona")
