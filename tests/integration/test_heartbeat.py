"""Heartbeat lag (opt-in): lagwatch writes its clock on the primary and reads it on replicas,
on both engines, with the least-privilege grants the docs give."""
import time

import pytest

from conftest import wait_for

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
        assert all(2.0 <= low and high < 4.6 for _, low, high in seen), seen
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
