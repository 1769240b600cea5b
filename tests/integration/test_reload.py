"""Reload (SIGHUP and POST /-/reload): unchanged clusters keep their state; a bad config is
refused with its file:line:column and the running one stays."""
import signal

from conftest import wait_for


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
