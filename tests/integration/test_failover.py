"""Roles are observed, not configured: a promoted standby is a primary in the next cycles;
two writable primaries are a split-brain. Each test gets its own servers (promotion is final)."""
import time

from conftest import wait_for

INTERVAL = 0.5


def test_promotion_while_old_primary_runs_is_split_brain_then_failover(pg_disposable, lagwatch_factory):
    pg = pg_disposable
    pg.run("wait-caught-up", pg.dir)
    lw = lagwatch_factory("[routing]\nmax_lag_seconds = 2.0\n" + pg.toml())
    wait_for("one primary", lambda: lw.value("lagwatch_cluster_primaries", cluster="orders") == 1, 10)

    pg.scenario("pg2", "promote")
    promoted = time.time()
    wait_for("split-brain seen", lambda: lw.value("lagwatch_cluster_primaries", cluster="orders") == 2, 5)
    assert time.time() - promoted <= 2 * INTERVAL + 0.5
    assert lw.value("lagwatch_node_role", node="pg2", role="primary") == 1
    _, body = lw.replicas()
    assert body["primary"] is None, "no primary is named while two are writable"
    for node in ["pg1", "pg2"]:
        assert lw.request("/api/v1/clusters/orders/nodes/%s/primary" % node)[0] == 503
    assert lw.clusters()[0]["state"] == "critical"

    # The old primary goes away: pg2 is the one primary, and the list follows.
    pg.scenario("pg1", "stop")
    stopped = time.time()
    wait_for("pg2 sole primary", lambda: lw.replicas()[1]["primary"] is not None
             and lw.replicas()[1]["primary"]["node"] == "pg2", 5)
    assert time.time() - stopped <= 2 * INTERVAL + 0.6
    assert lw.value("lagwatch_cluster_primaries", cluster="orders") == 1
    assert lw.request("/api/v1/clusters/orders/nodes/pg2/primary")[0] == 200
    assert lw.value("lagwatch_node_up", node="pg1") == 0
    # pg3 still follows the dead pg1: disconnected, so not a healthy member.
    wait_for("pg3 disconnected", lambda: lw.value("lagwatch_replica_connected", node="pg3") == 0, 10)
    assert ("pg3", False) not in [(r["node"], r["degraded"]) for r in lw.replicas()[1]["replicas"]]
