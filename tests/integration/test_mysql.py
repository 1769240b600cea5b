"""MariaDB specifics: lag_bytes across binlog rotations, split-brain, SHOW output kept out of labels,
which statements read a primary's binlog position and how often."""
import os
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
    """lagwatch takes the primary's position from SHOW MASTER STATUS every cycle, also in a
    newer file after a rotation: with nothing being written, the two must agree exactly."""
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


def com_show_binlogs(servers, node="db1"):
    """The server's count of SHOW BINARY LOGS statements, from every client."""
    _, value = servers.sql(node, "SHOW GLOBAL STATUS LIKE 'Com_show_binlogs'").split("\t")
    return int(value)


def cycles(lw, node="db1"):
    """How many collections of `node` lagwatch has made."""
    return lw.value("lagwatch_collection_duration_seconds_count", node=node) or 0


def wait_cycles(lw, n, node="db1"):
    start = cycles(lw, node)
    return wait_for("%d more cycles of %s" % (n, node), lambda: cycles(lw, node) >= start + n and
                    cycles(lw, node) - start, n * INTERVAL + 10)


def test_binary_logs_are_listed_at_start_and_after_a_rotation_only(mysql, lagwatch_factory):
    """SHOW BINARY LOGS reads the size of every binlog file the primary keeps (thousands on a
    busy one); a closed file's size never changes, so lagwatch lists them at its first cycle
    and after a rotation, not every cycle, and lag_bytes across the rotation stays exact.
    Com_show_binlogs counts SHOW BINARY LOGS from every client: the test sends none while it
    counts (its own at the end is subtracted)."""
    mysql.run("wait-caught-up", mysql.dir)
    lw = lagwatch_factory(mysql.toml())
    wait_for("measured", lambda: lw.value("lagwatch_replica_lag_bytes", node="db2") is not None, 10)
    mysql.scenario("db2", "stop-sql")
    try:
        # Writes go on, in one file: the position moves every cycle, the list of files does not.
        listed, n = com_show_binlogs(mysql), wait_cycles(lw, 10)
        quiet = com_show_binlogs(mysql) - listed
        print("Com_show_binlogs: +%d in %d cycles without a rotation" % (quiet, n))
        # At most one: the re-listing a list gets once a minute (for PURGE BINARY LOGS by hand).
        assert quiet <= 1, "%d SHOW BINARY LOGS in %d cycles without a rotation" % (quiet, n)

        # A rotation: listed again once, then quiet again while the new file grows.
        listed = com_show_binlogs(mysql)
        mysql.scenario("db1", "flush-logs")
        wait_for("a listing after the rotation", lambda: com_show_binlogs(mysql) > listed, 5)
        n = wait_cycles(lw, 10)
        rotation = com_show_binlogs(mysql) - listed
        print("Com_show_binlogs: +%d in the %d+ cycles from a FLUSH BINARY LOGS" % (rotation, n))
        assert 1 <= rotation <= 2, "%d SHOW BINARY LOGS after one rotation" % rotation

        # lag_bytes, cycles after the rotation (from the kept sizes), is the distance from db2's
        # executed position in the old file to the primary's position in the new one, both as
        # lagwatch read them in one cycle, by the sizes SHOW BINARY LOGS gives now.
        nodes = {n["name"]: n for n in lw.clusters()[0]["nodes"]}
        primary, channel = nodes["db1"]["position"], nodes["db2"]["channels"][0]
        logs = [line.split("\t") for line in mysql.sql("db1", "SHOW BINARY LOGS").splitlines()]
        sizes = {name: int(size) for name, size, *_ in logs}
        (rfile, rpos), (pfile, ppos) = [p.rsplit(":", 1) for p in (channel["position"], primary)]
        assert rfile < pfile, "db2 should still execute a file older than %s: %s" % (primary, channel)
        truth = sizes[rfile] - int(rpos) + sum(
            size for name, size in sizes.items() if rfile < name < pfile) + int(ppos)
        assert channel["lag_bytes"] == truth, (channel, primary, sizes)
    finally:
        mysql.scenario("db2", "start-sql")
    wait_for("caught up", lambda: (lw.value("lagwatch_replica_lag_bytes", node="db2") or 1) == 0
             or lw.value("lagwatch_replica_lag_bytes", node="db2") < 5000, 10)


def test_show_binary_log_status_syntax_error_falls_back_once(mysql_disposable, lagwatch_factory):
    """A primary whose version says MySQL 8.4 is asked SHOW BINARY LOG STATUS (8.4 has no SHOW
    MASTER STATUS). MariaDB 10.11 answers that with a syntax error; lagwatch then uses SHOW
    MASTER STATUS from then on, not the failing statement every cycle. The general log shows
    what lagwatch sent."""
    m = mysql_disposable
    m.scenario("db1", "stop")
    with open(os.path.join(m.dir, "db1.cmd"), "a") as f:
        f.write("--version=8.4.0-lagwatch-test\n")
    m.scenario("db1", "start")
    assert m.sql("db1", "SELECT @@version") == "8.4.0-lagwatch-test"
    m.sql("db1", "SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = ON")
    lw = lagwatch_factory(m.toml())

    def primary_position():
        nodes = [n for n in lw.clusters()[0]["nodes"] if n["name"] == "db1"]
        return nodes and nodes[0]["role"] == "primary" and nodes[0].get("position")

    wait_for("db1's position", primary_position, 15)
    wait_cycles(lw, 10)
    m.sql("db1", "SET GLOBAL general_log = OFF")
    sent = [line.split("\t", 1) for line in m.sql(
        "db1", "SELECT thread_id, argument FROM mysql.general_log WHERE command_type = 'Query' "
               "AND user_host LIKE 'lagwatch[%' ORDER BY event_time").splitlines()]
    connects = len({thread for thread, _ in sent})
    count = {q: sum(1 for _, s in sent if s == q) for _, q in sent}
    print("lagwatch's statements on db1: %r over %d connections" % (count, connects))
    assert count.get("SHOW MASTER STATUS", 0) >= 10, count
    # Tried once on each connection that got as far (the first fails on MySQL's variables,
    # which this MariaDB lacks, and reconnects as MariaDB): never every cycle.
    assert 1 <= count.get("SHOW BINARY LOG STATUS", 0) <= connects, (count, connects)
    assert count.get("SHOW BINARY LOGS", 0) <= connects + 1, count
    status = m.sql("db1", "SHOW MASTER STATUS").split("\t")
    assert primary_position().split(":")[0] == status[0], (primary_position(), status)
