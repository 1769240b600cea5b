"""MariaDB specifics: lag_bytes across binlog rotations, split-brain, SHOW output kept out of labels."""
import time

from conftest import wait_for

INTERVAL = 0.5


def test_lag_bytes_spans_binlog_rotations(mysql, lagwatch_factory):
    mysql.run("wait-caught-up", mysql.dir)
    lw = lagwatch_factory(mysql.toml())
    wait_for("measured", lambda: lw.value("lagwatch_replica_lag_bytes", node="db2") is not None, 10)
    mysql.scenario("db2", "stop-sql")
    try:
        wait_for("applying 0", lambda: lw.value("lagwatch_replica_applying", node="db2") == 0, 5)
        before = lw.value("lagwatch_replica_lag_bytes", node="db2")
        # Rotate twice between samples while writes go on: the distance must keep growing by
        # what was written, not fall back to the offset in the newest file.
        for _ in range(2):
            mysql.scenario("db1", "flush-logs")
            time.sleep(1.0)
        after = wait_for("lag bytes grew", lambda: (lw.value("lagwatch_replica_lag_bytes", node="db2") or 0)
                         > before and lw.value("lagwatch_replica_lag_bytes", node="db2"), 5)
        # Truth from the primary itself: bytes of every binlog from the replica's file on.
        status = mysql.sql("db2", "SHOW SLAVE STATUS\\G")
        fields = {k.strip(): v.strip() for k, v in
                  (line.split(":", 1) for line in status.splitlines() if ":" in line)}
        file, pos = fields["Relay_Master_Log_File"], int(fields["Exec_Master_Log_Pos"])
        logs = [line.split("\t") for line in mysql.sql("db1", "SHOW BINARY LOGS").splitlines()]
        sizes = {name: int(size) for name, size, *_ in logs}
        truth = sum(size for name, size in sizes.items() if name >= file) - pos
        assert len([n for n in sizes if n >= file]) >= 3, sizes
        current = lw.value("lagwatch_replica_lag_bytes", node="db2")
        # Writes continue between the two reads: allow what 20 inserts/s add in 2 intervals.
        assert abs(current - truth) < 20_000, (current, truth, after)
    finally:
        mysql.scenario("db2", "start-sql")
    wait_for("caught up", lambda: (lw.value("lagwatch_replica_lag_bytes", node="db2") or 1) == 0
             or lw.value("lagwatch_replica_lag_bytes", node="db2") < 5000, 10)


def test_promoted_replica_while_primary_runs_is_split_brain(mysql_disposable, lagwatch_factory):
    m = mysql_disposable
    lw = lagwatch_factory(m.toml())
    wait_for("one primary", lambda: lw.value("lagwatch_cluster_primaries", cluster="orders") == 1, 10)
    m.scenario("db2", "promote")
    promoted = time.time()
    wait_for("split-brain", lambda: lw.value("lagwatch_cluster_primaries", cluster="orders") == 2, 5)
    assert time.time() - promoted <= 2 * INTERVAL + 0.5
    assert lw.value("lagwatch_node_role", node="db2", role="primary") == 1
    assert lw.clusters()[0]["state"] == "critical"


def test_replication_error_is_a_number_in_metrics_and_text_in_the_api(mysql, lagwatch_factory):
    lw = lagwatch_factory(mysql.toml())
    wait_for("measured", lambda: lw.value("lagwatch_replica_lag_seconds", node="db3") is not None, 10)
    assert lw.value("lagwatch_replica_last_sql_errno", node="db3") == 0
    mysql.sql("db1", "CREATE TABLE IF NOT EXISTS lagwatch_demo.conflict (id INT PRIMARY KEY)")
    mysql.run("wait-caught-up", mysql.dir)
    # A row only db3 has, then the same key from the primary: db3's SQL thread stops on 1062.
    mysql.sql("db3", "SET SESSION sql_log_bin = 0; INSERT INTO lagwatch_demo.conflict VALUES (1)")
    mysql.sql("db1", "INSERT INTO lagwatch_demo.conflict VALUES (1)")
    try:
        wait_for("SQL error seen", lambda: lw.value("lagwatch_replica_last_sql_errno", node="db3") == 1062, 10)
        assert lw.value("lagwatch_replica_applying", node="db3") == 0
        for line in lw.scrape().splitlines():
            assert "Duplicate" not in line, "error text must not reach a label: " + line
        node = [n for n in lw.clusters()[0]["nodes"] if n["name"] == "db3"][0]
        assert "Duplicate" in node["channels"][0]["last_error"], node
        assert node["channels"][0]["source"].startswith("127.0.0.1:")
    finally:
        mysql.sql("db3", "SET SESSION sql_log_bin = 0; DELETE FROM lagwatch_demo.conflict WHERE id = 1")
        mysql.sql("db3", "START SLAVE SQL_THREAD")
        mysql.sql("db1", "DROP TABLE lagwatch_demo.conflict")
    wait_for("applying again", lambda: lw.value("lagwatch_replica_applying", node="db3") == 1, 10)
    wait_for("error cleared", lambda: lw.value("lagwatch_replica_last_sql_errno", node="db3") == 0, 10)


def test_primary_position_is_show_master_status(mysql, lagwatch_factory):
    """lagwatch takes the primary's position from SHOW BINARY LOGS (the newest file's size),
    not SHOW MASTER STATUS: with nothing being written, the two must agree exactly."""
    lw = lagwatch_factory(mysql.toml())
    wait_for("measured", lambda: lw.value("lagwatch_replica_lag_bytes", node="db2") is not None, 10)

    def lagwatch_position():
        nodes = lw.clusters()[0]["nodes"]
        primary = [n for n in nodes if n["role"] == "primary"]
        assert [n["name"] for n in primary] == ["db1"], nodes
        return primary[0].get("position")

    def master_status():
        file, position = mysql.sql("db1", "SHOW MASTER STATUS").split("\t")[:2]
        return "%s:%s" % (file, position)

    # A rotation first, and writes into the new file: the position is in the newest of
    # several files, not at a file's start.
    mysql.scenario("db1", "flush-logs")
    rotated = master_status()
    wait_for("writes after the rotation", lambda: master_status() != rotated, 5)
    mysql.run("load-stop", mysql.dir)
    try:
        mysql.run("wait-caught-up", mysql.dir)
        logs = mysql.sql("db1", "SHOW BINARY LOGS").splitlines()
        assert len(logs) >= 2
        # After a rotation MariaDB appends a Binlog_checkpoint event (43 bytes) naming the new
        # file once the old file's transactions are durable, on its own time: wait for it, or
        # it lands in the middle of "idle".
        newest = logs[-1].split("\t")[0]
        wait_for("the Binlog_checkpoint of %s" % newest, lambda: any(
            e.split("\t")[2:3] == ["Binlog_checkpoint"] and e.split("\t")[-1] == newest
            for e in mysql.sql("db1", "SHOW BINLOG EVENTS IN '%s'" % newest).splitlines()), 15)
        # Idle: the status stops moving; lagwatch has it within a cycle or two.
        truth = master_status()
        seen = wait_for("lagwatch's primary position = SHOW MASTER STATUS (%s)" % truth,
                        lambda: lagwatch_position() == truth and truth, 5)
        assert master_status() == truth, "the primary moved while idle: %s → %s" % (
            truth, master_status())
        # The replicas have executed exactly that much: no byte left to replicate.
        wait_for("lag_bytes 0", lambda: lw.value("lagwatch_replica_lag_bytes", node="db2") == 0
                 and lw.value("lagwatch_replica_lag_bytes", node="db3") == 0, 5)
        assert lagwatch_position() == seen
    finally:
        mysql.run("load", mysql.dir, "--rate", "20")
