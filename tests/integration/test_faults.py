"""Faults a replica fleet throws at lagwatch (issue 9), against real PostgreSQL 15 and MariaDB
10.11: a node hung, killed and restarted; the primary killed and a standby promoted; a network
partition in which the peer vanishes without a reset; monitoring users without the privileges
lagwatch needs; and proof that lagwatch writes nothing while its heartbeat is off.

Interval 500 ms, timeout 400 ms (conftest's defaults). Bounds below are built from them:
a fault is seen in the first cycle that starts after it (≤ one interval) once that cycle's
collection fails or times out (≤ one timeout); a node that answers again is up after the same
two. SLACK covers what that leaves out and a busy machine adds: the fixture command between
the clock reading and the fault itself (~50 ms for kill and stop, timed from the command's
start; hang is timed from its end), the 50 ms poll of /metrics, a scrape, and two shared cores
under other tests' load. Run with -s to see the figures measured; they sit well inside.
"""
import ctypes
import ipaddress
import os
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import wait_for

INTERVAL = 0.5
TIMEOUT = 0.4
SLACK = 0.6

NAME = {"postgres": "PostgreSQL", "mysql": "MariaDB"}


@pytest.fixture(params=["postgres", "mysql"])
def servers(request):
    return request.getfixturevalue("pg" if request.param == "postgres" else "mysql")


@pytest.fixture(params=["postgres", "mysql"])
def disposable(request):
    return request.getfixturevalue("pg_disposable" if request.param == "postgres"
                                   else "mysql_disposable")


# ---------------------------------------------------------------- helpers

def value(samples, name, **labels):
    """The one series of `name` in a scrape (lw.samples()) whose labels include `labels`."""
    found = [v for (n, ls), v in samples.items()
             if n == name and all((k, val) in ls for k, val in labels.items())]
    assert len(found) <= 1, "%s%s matches %d series" % (name, labels, len(found))
    return found[0] if found else None


def up(lw, node):
    return lw.value("lagwatch_node_up", node=node)


def errors(lw, node, reason):
    return lw.value("lagwatch_collection_errors_total", node=node, reason=reason) or 0


def fixture_env(s, key):
    with open(os.path.join(s.dir, "env")) as f:
        for line in f:
            if line.startswith(key + "="):
                return line.split("=", 1)[1].strip().strip('"')
    raise KeyError(key)


def answers_select_1(s, node):
    """Whether the server answers SELECT 1 right now, asked directly (as the superuser over its
    unix socket, so lagwatch's own sessions are not disturbed)."""
    if s.engine == "postgres":
        cmd = ["/usr/lib/postgresql/15/bin/psql", "-X", "-A", "-t", "-h",
               fixture_env(s, "PG_SOCKET_DIR"), "-p", str(s.port(node)), "-U", "postgres",
               "-d", "dbname=postgres connect_timeout=2", "-c", "SELECT 1"]
    else:
        cmd = ["mariadb", "--no-defaults", "-S", fixture_env(s, "MYSQL_SOCKET_" + node),
               "-u", "root", "--connect-timeout=2", "-N", "-B", "-e", "SELECT 1"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
    except subprocess.TimeoutExpired:
        return False
    return r.returncode == 0 and r.stdout.strip() == "1"


def db_connections(s, node):
    """lagwatch's sessions on `node`, as the server lists them."""
    if s.engine == "postgres":
        q = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'lagwatch'"
    else:
        q = "SELECT COUNT(*) FROM information_schema.processlist WHERE user = 'lagwatch'"
    return int(s.sql(node, q))


def resources(lw, s):
    pid = lw.proc.pid
    return {"threads": len(os.listdir("/proc/%d/task" % pid)),
            "fds": len(os.listdir("/proc/%d/fd" % pid)),
            "connections": {n: db_connections(s, n) for n in s.nodes}}


def settled_resources(lw, s, timeout=5):
    """resources() once two readings 0.3 s apart agree: a scrape's socket that lagwatch has
    not closed yet, or a server session about to end, is not counted as a resource."""
    last = resources(lw, s)
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(0.3)
        now = resources(lw, s)
        if now == last:
            return now
        last = now
    pytest.fail("lagwatch's resources did not settle within %d s: %s" % (timeout, last))


def others_keep_updating(lw, nodes, seconds):
    """Reads /metrics every half interval for `seconds`: every node in `nodes` stays up and is
    collected every interval (give or take the one cycle a busy machine may skip), and each
    scrape answers at once."""
    reads = []
    end = time.time() + seconds
    while True:
        t = time.time()
        samples = lw.samples()
        took = time.time() - t
        assert took < 0.5, "/metrics took %.3f s" % took
        reads.append((t, {n: (value(samples, "lagwatch_node_up", node=n),
                              value(samples, "lagwatch_collection_duration_seconds_count", node=n))
                          for n in nodes}))
        if t >= end:
            break
        time.sleep(INTERVAL / 2)
    elapsed = reads[-1][0] - reads[0][0]
    for n in nodes:
        assert all(r[1][n][0] == 1 for r in reads), (n, reads)
        grown = reads[-1][1][n][1] - reads[0][1][n][1]
        assert grown >= elapsed / INTERVAL - 1.5, (n, elapsed, reads)


def wait_until_answering(s, node, since, timeout=60):
    """Polls SELECT 1 on `node` until it answers. Returns (last, ready): the start of the last
    probe that failed (or `since`), and the start of the one that succeeded. The server began
    answering after `last` (a probe fails only if the server is not answering when it
    connects) and before the successful probe ended."""
    last = since
    deadline = time.time() + timeout
    while time.time() < deadline:
        t = time.time()
        if answers_select_1(s, node):
            return last, t
        last = t
        time.sleep(0.02)
    pytest.fail("%s did not answer SELECT 1 within %d s" % (node, timeout))


def wait_up(lw, node, timeout):
    """The first time /metrics says `node` is up (polled every 50 ms)."""
    return wait_for("%s up" % node, lambda: up(lw, node) == 1 and time.time(), timeout,
                    interval=0.05)


# ---------------------------------------------------------------- 1. hung, killed, restarted

def background(s, node, *action):
    return subprocess.Popen([s.fixture, "scenario", s.dir, node, *action],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc):
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, (proc.args, out, err)


def fault_round(s, lw, node, fault):
    """Puts `node` into `fault` (hang, kill or stop), checks it is seen and that nothing else is
    affected, brings it back, and returns the figures: (detected after, reason, answering
    after the return, up in lagwatch after answering)."""
    others = [n for n in s.nodes if n != node]
    before = {r: errors(lw, node, r) for r in ("timeout", "connect", "query", "auth")}
    injector = starter = None
    try:
        t0 = time.time()
        if fault == "hang":
            # Timed from the end of the command: the server is frozen process by process, and
            # lagwatch's session keeps answering until its own backend is stopped.
            s.scenario(node, fault)
            t0 = time.time()
        else:
            # In the background, timed from its start: the session breaks at once, while the
            # command goes on (`kill` waits for PID 1 to reap the server, `stop` for the
            # shutdown to finish).
            injector = background(s, node, fault)
        down_at = wait_for("%s down after %s" % (node, fault),
                           lambda: up(lw, node) == 0 and time.time(), 10, interval=0.05)
        detected = down_at - t0
        if injector is not None:
            finish(injector)
            injector = None
        assert detected <= INTERVAL + TIMEOUT + SLACK, (fault, detected)
        grown = {r for r in before if errors(lw, node, r) > before[r]}
        if fault == "hang":
            # A stopped server still accepts TCP (the kernel's backlog), then never answers.
            assert grown == {"timeout"}, (fault, grown)
        else:
            assert grown and "timeout" not in grown and "auth" not in grown, (fault, grown)
        assert lw.value("lagwatch_replica_lag_seconds", node=node) is None, "unknown: absent"
        others_keep_updating(lw, others, 1.5)
        assert lw.value("lagwatch_replica_lag_seconds", node=others[1]) < 2 * INTERVAL
        # Bring it back, measuring from the moment the server answers again.
        back = time.time()
        if fault == "hang":
            s.scenario(node, "unhang")
        else:
            # In the background: `start` returns only once the server is up (MariaDB: and
            # replicating), which is what is being timed.
            starter = background(s, node, "start")
        last_failed, answering = wait_until_answering(s, node, back)
        up_at = wait_up(lw, node, 20)
        # The server began answering after `last_failed`; lagwatch's next cycle starts within
        # an interval of that and its collection takes at most a timeout.
        assert up_at - last_failed <= INTERVAL + TIMEOUT + SLACK, (
            fault, up_at - last_failed, up_at - answering)
        return detected, sorted(grown), answering - back, up_at - answering
    finally:
        for proc in (injector, starter):
            if proc is not None:
                finish(proc)
        # Idempotent: each is a no-op when the node is already back.
        s.scenario(node, "unhang")
        s.scenario(node, "start")


def test_hung_killed_restarted_replica_others_unaffected_back_promptly_nothing_leaks(
        servers, lagwatch_factory):
    s = servers
    primary, r1, r2 = s.nodes
    s.run("wait-caught-up", s.dir)
    lw = lagwatch_factory(s.toml())
    wait_for("every node up and both replicas measured",
             lambda: all(up(lw, n) == 1 for n in s.nodes)
             and lw.value("lagwatch_replica_lag_seconds", node=r1) is not None
             and lw.value("lagwatch_replica_lag_seconds", node=r2) is not None, 10)
    baseline = settled_resources(lw, s)
    # One persistent connection per node; nothing else (heartbeat off).
    assert baseline["connections"] == {n: 1 for n in s.nodes}, baseline

    figures = []
    for _ in range(2):
        for fault in ("hang", "kill", "stop"):
            figures.append((fault,) + fault_round(s, lw, r2, fault))
    s.run("wait-caught-up", s.dir)

    # Threads and descriptors are lagwatch's own and must be exactly as before. The servers
    # drop the sessions lagwatch abandoned once they run again and see the client gone: a
    # hung backend's on SIGCONT, a killed server's with the server. They are given 10 s to
    # settle (it takes well under one) and must then equal the baseline.
    after = settled_resources(lw, s, timeout=10)
    assert after == baseline, (baseline, after)
    print("\n%s: baseline %s, after 6 rounds %s" % (NAME[s.engine], baseline, after))
    for fault, detected, reasons, answering, back in figures:
        print("  %-4s detected %.3f s (%s); answering %.3f s after the return; "
              "up in lagwatch %.3f s after answering" % (fault, detected, ",".join(reasons),
                                                         answering, back))
    assert all(up(lw, n) == 1 for n in s.nodes)
    wait_for("r2 measured again", lambda: lw.value("lagwatch_replica_lag_seconds", node=r2)
             is not None and lw.value("lagwatch_replica_lag_seconds", node=r2) < 2 * INTERVAL, 10)


# ---------------------------------------------------------------- 2. primary killed, failover

def most_advanced(s, replicas):
    """The replica that has the most of the dead primary's history: the one to promote, so
    that the other can follow it (it holds nothing the new primary lacks)."""
    def progress(node):
        if s.engine == "postgres":
            hi, lo = s.sql(node, "SELECT pg_last_wal_receive_lsn()").split("/")
            return int(hi, 16) << 32 | int(lo, 16)
        return int(s.sql(node, "SELECT @@gtid_slave_pos").split("-")[-1])
    return max(replicas, key=progress)


def test_primary_killed_no_primary_then_promoted_standby_takes_over(disposable, lagwatch_factory):
    s = disposable
    old, *replicas = s.nodes
    s.run("wait-caught-up", s.dir)
    lw = lagwatch_factory("[routing]\nmax_lag_seconds = 2.0\n" + s.toml())
    wait_for("one primary, both replicas listed",
             lambda: lw.value("lagwatch_cluster_primaries", cluster="orders") == 1
             and len(lw.replicas()[1]["replicas"]) == 2, 10)

    # The primary crashes (SIGKILL, writes still coming). In the background, timed from its
    # start: `kill` goes on to wait for PID 1 to reap the server.
    t0 = time.time()
    injector = background(s, old, "kill")
    no_primary = wait_for("no primary", lambda: lw.value("lagwatch_cluster_primaries",
                                                         cluster="orders") == 0 and time.time(),
                          10, interval=0.05) - t0
    finish(injector)
    assert no_primary <= INTERVAL + TIMEOUT + SLACK, no_primary
    assert up(lw, old) == 0
    assert lw.clusters()[0]["state"] == "critical"
    _, body = lw.replicas()
    assert body["primary"] is None, body
    for n in s.nodes:
        assert lw.request("/api/v1/clusters/orders/nodes/%s/primary" % n)[0] == 503
    wait_for("replicas disconnected", lambda: all(
        lw.value("lagwatch_replica_connected", node=r) == 0 for r in replicas), 5)
    nodes = {n["name"]: n for n in lw.clusters()[0]["nodes"]}
    for r in replicas:
        assert lw.value("lagwatch_replica_state", node=r, state="critical") == 1
        ch = nodes[r]["channels"][0]
        lag = lw.value("lagwatch_replica_lag_seconds", node=r)
        # Nothing to measure against: the engine's figure, flagged, or nothing at all.
        if s.engine == "postgres":
            assert lag is not None and ch["lag_from_engine"] is True, ch
            assert lw.value("lagwatch_replica_lag_fallback", node=r) == 1
        else:
            # Seconds_Behind_Master is NULL while the IO thread only tries to connect.
            assert lag is None and ch["lag_seconds"] is None, ch
            assert lw.value("lagwatch_replica_lag_fallback", node=r) is None
        assert lw.value("lagwatch_replica_lag_bytes", node=r) is None, "no primary position"

    # A standby is promoted: the one that has the most of the old primary's history.
    new = most_advanced(s, replicas)
    (other,) = [r for r in replicas if r != new]
    if s.engine == "mysql":
        # The bare minimum first: replication stopped, writes allowed. The channel is still
        # configured; lagwatch must see a writable node that replicates nothing as a primary.
        s.sql(new, "STOP SLAVE; SET GLOBAL read_only = 0")
    else:
        s.scenario(new, "promote")
    t1 = time.time()
    promoted_seen = wait_for("%s the primary" % new,
                             lambda: lw.value("lagwatch_cluster_primaries", cluster="orders") == 1
                             and lw.value("lagwatch_node_role", node=new, role="primary") == 1
                             and time.time(), 10, interval=0.05) - t1
    assert promoted_seen <= INTERVAL + TIMEOUT + SLACK, promoted_seen
    if s.engine == "mysql":
        s.scenario(new, "promote")  # RESET SLAVE ALL, and the fixture's writes move there
    assert lw.request("/api/v1/clusters/orders/nodes/%s/primary" % new)[0] == 200
    assert lw.clusters()[0]["state"] == "ok"
    wait_for("list names the new primary",
             lambda: (lw.replicas()[1]["primary"] or {}).get("node") == new, 5)
    # The other standby still follows the dead primary: disconnected, not listed as healthy.
    assert lw.value("lagwatch_replica_connected", node=other) == 0
    assert lw.value("lagwatch_replica_state", node=other, state="critical") == 1

    # It is pointed at the new primary: measured against it again, and listed.
    s.scenario(other, "follow", new)
    t2 = time.time()

    def recovered():
        lag = lw.value("lagwatch_replica_lag_seconds", node=other)
        _, body = lw.replicas()
        return (lw.value("lagwatch_replica_connected", node=other) == 1
                and lag is not None and lag < 2 * INTERVAL
                and lw.value("lagwatch_replica_lag_fallback", node=other) == 0
                and lw.value("lagwatch_replica_lag_bytes", node=other) is not None
                and lw.value("lagwatch_replica_state", node=other, state="ok") == 1
                and [r["node"] for r in body["replicas"]] == [other]
                and body["primary"]["node"] == new and time.time())
    # Routing re-admits a replica after `rise` (3) good cycles.
    back = wait_for("%s measured against %s and listed" % (other, new), recovered, 15) - t2
    snap = lw.clusters()[0]
    assert snap["state"] == "ok" and lw.value("lagwatch_cluster_primaries", cluster="orders") == 1
    roles = {n["name"]: n["role"] for n in snap["nodes"]}
    assert roles == {old: "unknown", new: "primary", other: "replica"}, roles
    # Writes go on at the new primary and the follower keeps up with them.
    time.sleep(1)
    assert lw.value("lagwatch_replica_lag_seconds", node=other) < 2 * INTERVAL
    print("\n%s: no primary seen %.3f s after the kill; %s seen as primary %.3f s after its "
          "promotion; %s measured and listed %.3f s after following it" % (
              NAME[s.engine], no_primary, new, promoted_seen, other, back))


# ---------------------------------------------------------------- 3. network partition

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def ip(*args, netns=None):
    cmd = ["ip"] + (["-n", netns] if netns else []) + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), r.stderr.strip()))
    return r.stdout


def free_slash30():
    """A /30 in 10.254.0.0/16 that no address or route of this machine touches: ours alone, so
    nothing sent to it can leave the veth pair built on it."""
    taken = [ipaddress.ip_network(w, strict=False) for w in
             re.findall(r"\binet (\S+)", ip("-4", "-o", "addr"))]
    for line in ip("-4", "route", "show", "table", "all").splitlines():
        first = line.split()[0] if line.split() else ""
        if first in ("local", "broadcast", "unicast"):
            first = line.split()[1]
        if first != "default" and re.match(r"^[0-9./]+$", first):
            taken.append(ipaddress.ip_network(first, strict=False))
    start = os.getpid() % 16000
    for i in range(16384):
        net = ipaddress.ip_network("10.254.0.0/16").network_address + 4 * ((start + i) % 16384)
        candidate = ipaddress.ip_network("%s/30" % net)
        if not any(candidate.overlaps(t) for t in taken):
            return candidate
    raise RuntimeError("no free /30 in 10.254.0.0/16")


class Partition:
    """A network namespace joined to this one by a veth pair on a private /30, and a TCP relay
    listening inside it (on the namespace's end of the veth) that forwards to one database node
    on 127.0.0.1 here. lagwatch reaches that node through the veth; `cut()` DROPs the relay's
    packets in the namespace's own netfilter tables, so the peer vanishes without a reset (no
    RST, no ICMP), and `heal()` removes the rules. Everything goes with `close()`: the relay,
    the veth pair and the namespace (and with it its rules)."""

    def __init__(self, target_port):
        sweep_stale_partitions()
        self.name = "lwf%d%s" % (os.getpid(), "abcdefghij"[len(_partitions) % 10])
        self.host_if, self.ns_if = self.name + "h", self.name + "n"
        self.target_port = target_port
        self.cut_rules = []
        self.stopping = False
        self.sockets = []
        self.threads = []
        self.listener = None
        _partitions.append(self)
        try:
            net = free_slash30()
            hosts = list(net.hosts())
            self.host_addr, self.ns_addr = str(hosts[0]), str(hosts[1])
            ip("netns", "add", self.name)
            ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            ip("link", "set", self.ns_if, "netns", self.name)
            ip("addr", "add", "%s/30" % self.host_addr, "dev", self.host_if)
            ip("link", "set", self.host_if, "up")
            ip("addr", "add", "%s/30" % self.ns_addr, "dev", self.ns_if, netns=self.name)
            ip("link", "set", self.ns_if, "up", netns=self.name)
            ip("link", "set", "lo", "up", netns=self.name)
            self.listener = self._listen_in_namespace()
            self.port = self.listener.getsockname()[1]
            t = threading.Thread(target=self._accept, daemon=True)
            t.start()
            self.threads.append(t)
        except BaseException:
            self.close()
            raise

    def _listen_in_namespace(self):
        # setns() moves only the calling thread; it moves back before anything else runs here.
        # A socket stays in the namespace it was made in.
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open("/run/netns/%s" % self.name, os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns into %s" % self.name)
            try:
                s = socket.socket()
                s.bind((self.ns_addr, 0))
                s.listen(16)
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back")
        finally:
            os.close(own)
            os.close(target)
        return s

    def _accept(self):
        while not self.stopping:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                t = threading.Thread(target=self._pump, args=(a, b), daemon=True)
                t.start()
                self.threads.append(t)

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def iptables(self, *args):
        r = subprocess.run(["ip", "netns", "exec", self.name, "iptables", "-w", *args],
                           capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            raise RuntimeError("iptables %s: %s" % (" ".join(args), r.stderr.strip()))

    def cut(self):
        for rule in (["INPUT", "-p", "tcp", "--dport", str(self.port), "-j", "DROP"],
                     ["OUTPUT", "-p", "tcp", "--sport", str(self.port), "-j", "DROP"]):
            self.iptables("-A", *rule)
            self.cut_rules.append(rule)

    def heal(self):
        while self.cut_rules:
            self.iptables("-D", *self.cut_rules.pop())

    def close(self):
        self.stopping = True
        problems = []
        for s in [self.listener] + self.sockets:
            if s is None:
                continue
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for t in self.threads:
            t.join(timeout=5)
        for cmd in (("link", "del", self.host_if), ("netns", "del", self.name)):
            try:
                ip(*cmd)
            except RuntimeError as e:
                if "Cannot find device" not in str(e) and "No such file" not in str(e):
                    problems.append(str(e))
        _partitions.remove(self)
        assert not problems, problems


_partitions = []


def sweep_stale_partitions():
    """Namespaces this file made in a run that was killed before its `finally` (its PID is in
    the name and gone). Deleting one also deletes its veth pair and its rules."""
    for line in ip("netns", "list").splitlines():
        m = re.match(r"^(lwf(\d+)[a-j])\b", line)
        if m and not os.path.exists("/proc/%s" % m.group(2)):
            ip("netns", "del", m.group(1))


def leftovers(name):
    """Any namespace or link of ours still on the machine."""
    return [line for line in (ip("netns", "list") + ip("-o", "link")).splitlines()
            if name in line]


def test_partition_node_down_by_timeout_others_unaffected_recovers_after_heal(
        servers, lagwatch_factory):
    if shutil.which("iptables") is None:
        pytest.fail("iptables is missing: run scripts/setup")
    s = servers
    primary, r1, r2 = s.nodes
    s.run("wait-caught-up", s.dir)
    part = Partition(s.port(r2))
    try:
        # r2 is reached through the veth and the relay; the others directly.
        host = "%s:%d" % (part.ns_addr, part.port)
        config = s.toml().replace("127.0.0.1:%d" % s.port(r2), host)
        assert host in config
        lw = lagwatch_factory(config)
        wait_for("r2 measured through the relay",
                 lambda: lw.value("lagwatch_replica_lag_seconds", node=r2) is not None, 10)
        assert up(lw, r2) == 1 and db_connections(s, r2) == 1

        before = errors(lw, r2, "timeout")
        t0 = time.time()
        part.cut()
        down_at = wait_for("r2 down", lambda: up(lw, r2) == 0 and time.time(), 10,
                           interval=0.05)
        detected = down_at - t0
        # The query in flight gets no answer: the cycle's timeout, not a reset, says so.
        assert detected <= INTERVAL + TIMEOUT + SLACK, detected
        assert errors(lw, r2, "timeout") > before
        for reason in ("connect", "query", "auth"):
            assert errors(lw, r2, reason) == 0, (reason, lw.scrape())
        assert lw.value("lagwatch_replica_lag_seconds", node=r2) is None
        others_keep_updating(lw, [primary, r1], 3)
        assert lw.value("lagwatch_replica_lag_seconds", node=r1) < 2 * INTERVAL
        # Reconnection attempts meet silence too: still timeouts, never a made-up reason.
        assert up(lw, r2) == 0
        assert [errors(lw, r2, r) for r in ("connect", "query", "auth")] == [0, 0, 0], lw.scrape()

        t1 = time.time()
        part.heal()
        back = wait_up(lw, r2, 15) - t1
        # Connection attempts during the partition are abandoned at each cycle's timeout
        # (not left waiting on a dropped SYN for the driver's whole-second connect timeout),
        # so the first cycle after the heal connects.
        assert back <= INTERVAL + TIMEOUT + SLACK, back
        wait_for("r2 measured again", lambda: lw.value("lagwatch_replica_lag_seconds", node=r2)
                 is not None, 5)
        print("\n%s: partitioned r2 down %.3f s after the cut (timeout); up %.3f s after the "
              "heal" % (NAME[s.engine], detected, back))
    finally:
        part.heal()
        part.close()
    assert leftovers(part.name) == []


# ---------------------------------------------------------------- 4. permission denied

def no_made_up_figures(lw, nodes):
    """No lag series of `nodes` at all, and no connected/applying claim: unknown is absent."""
    for (name, labels), v in lw.samples().items():
        labels = dict(labels)
        if labels.get("node") in nodes and name.startswith("lagwatch_replica_") and name not in (
                "lagwatch_replica_state", "lagwatch_replica_routable"):
            pytest.fail("%s%s = %s although lagwatch may not read it" % (name, labels, v))


def psql_as_lagwatch(s, node, query):
    """One query as the monitoring role, over TCP as lagwatch connects."""
    with open(s.password_file) as f:
        env = dict(os.environ, PGPASSWORD=f.read())
    r = subprocess.run(["/usr/lib/postgresql/15/bin/psql", "-X", "-A", "-t", "-d",
                        "host=127.0.0.1 port=%d user=lagwatch dbname=postgres sslmode=disable"
                        % s.port(node), "-c", query],
                       capture_output=True, text=True, timeout=10, env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_postgres_user_without_pg_monitor_is_an_auth_error_not_a_disconnect(pg, lagwatch_factory):
    """Without pg_monitor (pg_read_all_stats), pg_stat_wal_receiver and pg_stat_replication show
    a monitoring role their rows but NULL in every detail column: a standby would look like it
    had no streaming WAL receiver."""
    pg.sql("pg1", "REVOKE pg_monitor FROM lagwatch")
    try:
        pg.run("wait-caught-up", pg.dir)
        # The revoke has reached the standbys too (roles are replicated).
        for n in pg.nodes:
            assert pg.sql(n, "SELECT pg_has_role('lagwatch', 'pg_read_all_stats', 'USAGE')") == "f"
        # What the role sees: a streaming standby's WAL receiver, with NULL for its status.
        assert psql_as_lagwatch(pg, "pg2", "SELECT pid IS NOT NULL, status IS NULL "
                                           "FROM pg_stat_wal_receiver") == "t|t"
        lw = lagwatch_factory(pg.toml())
        wait_for("an auth error counted on every node",
                 lambda: all(errors(lw, n, "auth") >= 2 for n in pg.nodes), 10)
        for n in pg.nodes:
            assert up(lw, n) == 0
            assert lw.value("lagwatch_node_role", node=n, role="unknown") == 1
        no_made_up_figures(lw, pg.nodes)
        assert lw.value("lagwatch_replica_state", node="pg2", state="unknown") == 1
        for n in lw.clusters()[0]["nodes"]:
            assert n["error"]["reason"] == "auth" and "GRANT pg_monitor" in n["error"]["message"], n
        logged = [line for line in lw.log_text().splitlines() if "collection failed" in line]
        assert len(logged) == 3 and all("reason=auth" in line and "pg_monitor" in line
                                        for line in logged), logged
        print("\n" + logged[0])
    finally:
        pg.sql("pg1", "GRANT pg_monitor TO lagwatch")
    pg.run("wait-caught-up", pg.dir)


MARIADB_GRANT = "GRANT BINLOG MONITOR, REPLICA MONITOR ON *.* TO 'lagwatch'@'127.0.0.1'"


def test_mariadb_user_without_replica_monitor_or_binlog_monitor(mysql, lagwatch_factory):
    m = mysql
    primary, r1, r2 = m.nodes
    try:
        # Without REPLICA MONITOR, no node can say whether it replicates: every one fails.
        m.sql(primary, "REVOKE REPLICA MONITOR ON *.* FROM 'lagwatch'@'127.0.0.1'")
        m.run("wait-caught-up", m.dir)  # the REVOKE replicates
        lw = lagwatch_factory(m.toml())
        wait_for("auth errors on every node",
                 lambda: all(errors(lw, n, "auth") >= 2 for n in m.nodes), 10)
        assert all(up(lw, n) == 0 for n in m.nodes)
        no_made_up_figures(lw, m.nodes)
        # MariaDB 10.11 still names REPLICA MONITOR by its old name in the message.
        for n in lw.clusters()[0]["nodes"]:
            assert n["error"]["reason"] == "auth" and "SLAVE MONITOR" in n["error"]["message"], n
        logged = [line for line in lw.log_text().splitlines() if "collection failed" in line]
        assert len(logged) == 3 and all("reason=auth" in line and "SLAVE MONITOR" in line
                                        for line in logged), logged
        print("\n" + logged[0])
        lw.stop()

        # Without BINLOG MONITOR only the primary fails (its position is SHOW BINARY LOGS);
        # the replicas' lag then has nothing to be measured against.
        m.sql(primary, MARIADB_GRANT + "; REVOKE BINLOG MONITOR ON *.* FROM 'lagwatch'@'127.0.0.1'")
        m.run("wait-caught-up", m.dir)
        lw = lagwatch_factory(m.toml())
        wait_for("auth errors on the primary", lambda: errors(lw, primary, "auth") >= 2, 10)
        assert up(lw, primary) == 0 and up(lw, r1) == 1 and up(lw, r2) == 1
        assert lw.value("lagwatch_cluster_primaries", cluster="orders") == 0
        (node,) = [n for n in lw.clusters()[0]["nodes"] if n["name"] == primary]
        assert node["error"]["reason"] == "auth", node
        assert "BINLOG MONITOR" in node["error"]["message"], node
        for r in (r1, r2):
            assert errors(lw, r, "auth") == 0
            # The engine's own figure, flagged as such, or none: never a measured-looking 0.
            assert lw.value("lagwatch_replica_lag_bytes", node=r) is None
            if lw.value("lagwatch_replica_lag_seconds", node=r) is not None:
                assert lw.value("lagwatch_replica_lag_fallback", node=r) == 1
        logged = [line for line in lw.log_text().splitlines() if "collection failed" in line]
        assert len(logged) == 1 and "BINLOG MONITOR" in logged[0], logged
        print(logged[0])
    finally:
        m.sql(primary, MARIADB_GRANT)
        m.run("wait-caught-up", m.dir)


# ---------------------------------------------------------------- 5. read-only

def test_postgres_lagwatch_writes_nothing(pg, lagwatch_factory):
    """Two independent proofs on the primary, where a write could land: the monitoring role
    runs with default_transaction_read_only (any write, also from inside a function, would
    fail the collection), and log_statement = 'all' lists every statement lagwatch sends."""
    log = os.path.join(pg.dir, "pg1.log")
    pg.sql("pg1", "ALTER ROLE lagwatch SET default_transaction_read_only = on")
    pg.sql("pg1", "ALTER SYSTEM SET log_statement = 'all'; SELECT pg_reload_conf()")
    try:
        wait_for("log_statement = all", lambda: pg.sql("pg1", "SHOW log_statement") == "all", 5)
        pg.run("wait-caught-up", pg.dir)
        offset = os.path.getsize(log)
        lw = lagwatch_factory(pg.toml())
        wait_for("10 cycles", lambda: (lw.value("lagwatch_collection_duration_seconds_count",
                                                node="pg1") or 0) >= 10, 15)
        assert all(up(lw, n) == 1 for n in pg.nodes)
        for n in pg.nodes:
            for reason in ("timeout", "connect", "query", "auth"):
                assert errors(lw, n, reason) == 0, (n, reason, lw.log_text())
        cycles = lw.value("lagwatch_collection_duration_seconds_count", node="pg1")
        with open(log, errors="replace") as f:
            f.seek(offset)
            text = f.read()
    finally:
        pg.sql("pg1", "ALTER SYSTEM RESET log_statement; SELECT pg_reload_conf()")
        pg.sql("pg1", "ALTER ROLE lagwatch RESET default_transaction_read_only")
    # log_line_prefix is '%m [%p] %q%a ': application_name follows the PID. A statement may
    # span lines; its first word is on the first non-blank one.
    entries = re.split(r"\n(?=\d{4}-\d\d-\d\d )", text)
    # Simple-protocol statements are logged as "statement:", extended-protocol ones as
    # "execute <name>:"; either would be here.
    said = re.compile(r"\S+ \S+ \S+ \[\d+\] lagwatch LOG:  (?:statement|execute [^:]*): (.*)",
                      re.S)
    ours = [m.group(1) for m in map(said.match, entries) if m]
    first_words = [text.split()[0].upper() for text in ours]
    writes_by_load = [e for e in entries if "statement: INSERT INTO writes" in e]
    print("\nPostgreSQL: %d statements from lagwatch in %d cycles: %s; the load's INSERTs logged "
          "meanwhile: %d" % (len(ours), cycles, sorted(set(first_words)), len(writes_by_load)))
    assert writes_by_load, "log_statement must show writes, or its silence proves nothing"
    assert len(ours) >= cycles - 1, (len(ours), cycles)
    assert set(first_words) == {"SELECT"}, [t for t in ours if t.split()[0].upper() != "SELECT"]


def test_mariadb_lagwatch_writes_nothing(mysql, lagwatch_factory):
    """MariaDB's user statistics count, per account, rows changed and bytes written to the
    binlog; on the primary lagwatch's stay 0 while the fixture's writer's grow. And its grants
    allow nothing else."""
    m = mysql
    primary = m.nodes[0]
    grants = m.sql(primary, "SHOW GRANTS FOR 'lagwatch'@'127.0.0.1'")
    assert re.sub(r" IDENTIFIED BY PASSWORD '\S+'", "", grants) == (
        "GRANT BINLOG MONITOR, SLAVE MONITOR ON *.* TO `lagwatch`@`127.0.0.1`"), grants
    m.sql(primary, "SET GLOBAL userstat = ON; FLUSH USER_STATISTICS")
    try:
        lw = lagwatch_factory(m.toml())
        wait_for("10 cycles", lambda: (lw.value("lagwatch_collection_duration_seconds_count",
                                                node=primary) or 0) >= 10, 15)
        assert all(up(lw, n) == 1 for n in m.nodes)
        cols = ("USER, SELECT_COMMANDS, OTHER_COMMANDS, UPDATE_COMMANDS, ROWS_INSERTED, "
                "ROWS_UPDATED, ROWS_DELETED, BINLOG_BYTES_WRITTEN, COMMIT_TRANSACTIONS")
        rows = {line.split("\t")[0]: [int(x) for x in line.split("\t")[1:]] for line in m.sql(
            primary, "SELECT %s FROM information_schema.USER_STATISTICS" % cols).splitlines()}
    finally:
        m.sql(primary, "SET GLOBAL userstat = OFF")
    print("\nMariaDB USER_STATISTICS on the primary (%s): %s" % (cols, rows))
    sel, other, upd, ins, updated, deleted, binlog, _ = rows["lagwatch"]
    assert sel + other >= 10, "lagwatch's statements are counted"
    assert (upd, ins, updated, deleted, binlog) == (0, 0, 0, 0, 0), rows["lagwatch"]
    writer = rows[[u for u in rows if u != "lagwatch"][0]]
    assert writer[3] > 0 and writer[6] > 0, "the counters do count writes: %s" % rows
