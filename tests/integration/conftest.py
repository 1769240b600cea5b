"""Integration-test fixtures: real PostgreSQL servers on 127.0.0.1 and a real lagwatch process.

Servers are started by scripts/fixtures/pg (shared with scripts/demo) and always torn down,
also when a test fails. lagwatch is started by PID and stopped by PID.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import json
import random
import re
from datetime import datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from processes import stop_process

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PG_FIXTURE = os.path.join(ROOT, "scripts", "fixtures", "pg")
MYSQL_FIXTURE = os.path.join(ROOT, "scripts", "fixtures", "mysql")
LAGWATCH_BIN = os.environ.get("LAGWATCH_BIN", os.path.join(ROOT, "build", "lagwatch"))


def free_port_block(count):
    """A base port such that base..base+count-1 are all free on 127.0.0.1.

    Taken below the kernel's ephemeral range, where no outgoing connection (a test's thousand
    clients, a router's) can take a port between this check and the server's bind, and from
    a slice of that range of this pytest-xdist worker's own, so workers never pick alike.
    $LAGWATCH_TEST_PORT_SHARE "K/N" first narrows the range to its K-th of N parts: scripts/test
    gives the soak, which runs alongside the pytest stages, a part of its own."""
    ephemeral_low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    low, high = 10000, max(ephemeral_low, 12000)
    share = os.environ.get("LAGWATCH_TEST_PORT_SHARE")
    if share:
        part, parts = (int(n) for n in share.split("/"))
        low, high = low + part * (high - low) // parts, low + (part + 1) * (high - low) // parts
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    size = (high - low) // max(workers, 1)
    low = low + index * size
    for _ in range(500):
        base = random.randrange(low, low + size - count)
        ok = True
        for p in range(base, base + count):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free block of %d ports on 127.0.0.1 in %d-%d" % (count, low, low + size))


class ServerSet:
    """A primary and replicas run by one of scripts/fixtures/{pg,mysql}."""

    fixture = None
    prefix = None

    def __init__(self, directory, base_port, replicas):
        self.dir = directory
        self.base_port = base_port
        self.nodes = ["%s%d" % (self.prefix, i + 1) for i in range(replicas + 1)]

    def run(self, *args, check=True, timeout=180):
        r = subprocess.run([self.fixture, *args], capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError("%s %s failed (%d):\n%s\n%s" % (
                os.path.basename(self.fixture), " ".join(args), r.returncode, r.stdout, r.stderr))
        return r.stdout.strip()

    def port(self, node):
        return self.base_port + self.nodes.index(node)

    def sql(self, node, query):
        return self.run("sql", self.dir, node, query)

    def scenario(self, node, action, *arg):
        return self.run("scenario", self.dir, node, action, *arg)

    def truth(self, node):
        """(when, true lag) of `node` now, measured independently of lagwatch: the age of the
        newest row of the fixture's write load the node has applied (`at` is the primary's
        insert time; one machine, one clock), and the node's clock time of that reading. A
        sawtooth of one inter-row gap (50 ms at the fixtures' 20 rows/s)."""
        if self.engine == "postgres":
            q = ("SELECT extract(epoch FROM clock_timestamp()), "
                 "extract(epoch FROM clock_timestamp() - max(at)) FROM writes")
        else:
            q = "SELECT UNIX_TIMESTAMP(NOW(6)), UNIX_TIMESTAMP(NOW(6)) - UNIX_TIMESTAMP(MAX(at)) FROM writes"
        when, lag = re.split(r"[|\s]+", self.sql(node, q).strip())
        return float(when), float(lag)

    def lag_against_truth(self, lw, node, seconds, field="lag_seconds", every=0.1):
        """Reads lagwatch's figure `field` for `node` (from /api/v1/clusters, with the time its
        sample was taken) for `seconds`, probing the truth between reads. Returns
        [(figure, low, high)]: the true lag at the figure's own sample time lies in [low, high].
        Lag grows at most 1 s per s, so a probe at time p bounds the truth at an earlier time s
        from below by truth(p) − (p − s), and one at an earlier time q bounds it from above by
        truth(q) + (s − q). Figures without a probe on both sides are left out."""
        probes, figures = [self.truth(node)], []
        end = time.time() + seconds
        while time.time() < end:
            (n,) = [n for c in lw.clusters() for n in c["nodes"] if n["name"] == node]
            figures.append((iso_seconds(n["sampled_at"]), n["channels"][0].get(field)))
            probes.append(self.truth(node))
            time.sleep(every)
        out = []
        for at, figure in figures:
            before = [(p, t) for p, t in probes if p <= at]
            after = [(p, t) for p, t in probes if p >= at]
            if before and after:
                (q, tq), (p, tp) = before[-1], after[0]
                out.append((figure, tp - (p - at), tq + (at - q)))
        assert len(out) >= len(figures) // 2, (figures, probes)
        return out

    @property
    def password_file(self):
        return os.path.join(self.dir, "lagwatch.password")

    def toml(self, cluster="orders", interval="500ms", timeout="400ms", extra=""):
        lines = ["[[cluster]]", 'name = "%s"' % cluster, 'engine = "%s"' % self.engine,
                 'interval = "%s"' % interval, 'timeout = "%s"' % timeout, extra]
        for n in self.nodes:
            lines += ["[[cluster.node]]", 'name = "%s"' % n, 'dsn = "%s"' % self.dsn(n),
                      'password_file = "%s"' % self.password_file]
        return "\n".join(lines) + "\n"


class PgCluster(ServerSet):
    """A PostgreSQL primary (pg1) and standbys (pg2, pg3) run by scripts/fixtures/pg."""

    fixture = PG_FIXTURE
    prefix = "pg"
    engine = "postgres"

    # The database lagwatch connects to; "lagwatch_demo" (where `pg sql` runs) for tests
    # that need lagwatch to see tables they create, such as the heartbeat's.
    database = "postgres"

    def dsn(self, node):
        return "postgresql://lagwatch@127.0.0.1:%d/%s?sslmode=disable" % (self.port(node),
                                                                          self.database)


class MysqlCluster(ServerSet):
    """A MariaDB primary (db1) and replicas (db2, db3) run by scripts/fixtures/mysql."""

    fixture = MYSQL_FIXTURE
    prefix = "db"
    engine = "mysql"

    def dsn(self, node):
        return "mysql://lagwatch@127.0.0.1:%d/" % self.port(node)


def list_server_set(fixture, directory):
    """Lists a server set, before it comes up, in scripts/test's $LAGWATCH_TEST_SERVERS: a file
    naming its fixture (pg, mysql) and its directory, which the caller removes once `down` has
    succeeded. A pytest-xdist worker killed with the run tears nothing down; scripts/test's
    exit trap runs `scripts/fixtures/NAME down DIR` for every file left. Returns the file, or
    None outside scripts/test."""
    listing = os.environ.get("LAGWATCH_TEST_SERVERS")
    if not listing:
        return None
    entry = os.path.join(listing, os.path.basename(directory))
    with open(entry + ".part", "w") as f:
        f.write("%s\n%s\n" % (os.path.basename(fixture), directory))
    os.rename(entry + ".part", entry)  # whole or absent, for a trap reading it at any moment
    return entry


def servers(kind):
    """A fresh primary and two replicas with a light write load; torn down on exit."""
    directory = tempfile.mkdtemp(prefix="lw-%s-" % kind.prefix)
    base = free_port_block(3)
    cluster = kind(directory, base, 2)
    replicas_flag = "--standbys" if kind is PgCluster else "--replicas"
    entry = list_server_set(kind.fixture, directory)
    try:
        cluster.run("up", directory, "--port", str(base), replicas_flag, "2", timeout=300)
        cluster.run("load", directory, "--rate", "20")
        yield cluster
    finally:
        down = subprocess.run([kind.fixture, "down", directory], timeout=120)
        shutil.rmtree(directory, ignore_errors=True)
        if entry and down.returncode == 0:
            os.unlink(entry)  # else scripts/test's exit trap tries `down` again


def pg_servers():
    yield from servers(PgCluster)


@pytest.fixture(scope="session")
def pg():
    """Shared servers: tests put standbys into scenarios and undo them."""
    yield from pg_servers()


@pytest.fixture
def pg_disposable():
    """Servers for one destructive test (promotion, split-brain)."""
    yield from pg_servers()


@pytest.fixture(scope="session")
def mysql():
    """Shared MariaDB servers: tests put replicas into scenarios and undo them."""
    yield from servers(MysqlCluster)


@pytest.fixture
def mysql_disposable():
    yield from servers(MysqlCluster)


class Lagwatch:
    """A lagwatch process with its own config file and port."""

    # Runtime options for a sanitizer build (LAGWATCH_SANITIZE=address|thread; ignored by a
    # normal build). Reports go to stderr, i.e. the log, where stop() looks for them; options
    # from the environment come after these and win, except log_path (scripts/test's catch-all
    # for lagwatch processes started by other means), which would take the report out of the log.
    SANITIZER_OPTIONS = {
        "ASAN_OPTIONS": "halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:"
                        "check_initialization_order=1:strict_init_order=1",
        "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
        # Every race is reported (not only the first); second_deadlock_stack names both
        # acquisitions of a lock-order inversion. ignore_noninstrumented_modules: memcpy and
        # the like called from libraries built without TSan (libpq, libpqxx, libcurl,
        # OpenSSL) are not checked. TSan cannot see those libraries' own synchronisation
        # (libpqxx's function-local statics read a guard inline), so it reported races on
        # data they initialise once; and it makes libpq's SCRAM login fast enough for the
        # tests' 400 ms timeouts. lagwatch's own accesses are all still checked.
        "TSAN_OPTIONS": "halt_on_error=0:second_deadlock_stack=1:history_size=4:"
                        "ignore_noninstrumented_modules=1",
        # Third-party leaks only, each with its reason in the file.
        "LSAN_OPTIONS": "suppressions=" + os.path.join(ROOT, "tests", "sanitizers", "lsan.supp"),
    }
    SANITIZER_REPORTS = ("ERROR: AddressSanitizer", "runtime error:", "WARNING: ThreadSanitizer",
                         "ERROR: LeakSanitizer")

    @classmethod
    def sanitizer_env(cls):
        env = dict(os.environ)
        for name, ours in cls.SANITIZER_OPTIONS.items():
            inherited = [o for o in re.split(r"[:\s]+", env.get(name, ""))
                         if o and not o.startswith("log_path=")]
            env[name] = ":".join([ours, *inherited])
        return env

    def __init__(self, config_text, tmp_path, server_extra=""):
        self.port = free_port_block(1)
        self.config = tmp_path / ("lagwatch-%d.toml" % self.port)
        self.config.write_text('[server]\nlisten = "127.0.0.1:%d"\n%s\n%s' % (
            self.port, server_extra, config_text))
        self.log = open(tmp_path / ("lagwatch-%d.log" % self.port), "w+")
        self.proc = subprocess.Popen([LAGWATCH_BIN, "--config", str(self.config)],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     env=self.sanitizer_env())
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("lagwatch exited with %d:\n%s" % (self.proc.returncode,
                                                                     self.log_text()))
            try:
                if self.get("/-/ready")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("lagwatch not ready within 15 s:\n" + self.log_text())

    def log_text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def get(self, path, timeout=5):
        status, _, body = self.request(path, timeout)
        return status, body

    def request(self, path, timeout=5, method="GET"):
        """(status, headers, body) of one request."""
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read().decode()

    def replicas(self, cluster="orders", query=""):
        status, headers, body = self.request("/api/v1/clusters/%s/replicas%s" % (cluster, query))
        assert status == 200, body
        return headers, json.loads(body)

    def scrape(self):
        status, body = self.get("/metrics")
        assert status == 200, body
        return body

    def samples(self):
        """{(name, frozenset(labels.items())): value} of one scrape."""
        out = {}
        for family in text_string_to_metric_families(self.scrape()):
            for s in family.samples:
                out[(s.name, frozenset(s.labels.items()))] = s.value
        return out

    def value(self, name, **labels):
        """The value of the one series of `name` whose labels include `labels`, or None."""
        found = [v for (n, ls), v in self.samples().items()
                 if n == name and all((k, val) in ls for k, val in labels.items())]
        assert len(found) <= 1, "%s%s matches %d series" % (name, labels, len(found))
        return found[0] if found else None

    def clusters(self):
        status, body = self.get("/api/v1/clusters")
        assert status == 200, body
        return json.loads(body)["clusters"]

    def stop(self):
        """Stops lagwatch (SIGTERM, SIGKILL after 20 s) and fails the test if its log holds a
        sanitizer report (it is written at exit for leaks)."""
        # A sanitizer build's exit (its leak check) is slower than a normal one's.
        stop_process(self.proc, grace_seconds=20)
        if self.log.closed:
            return
        text = self.log_text()
        self.log.close()
        lines = text.splitlines()
        for i, line in enumerate(lines):
            report = next((r for r in self.SANITIZER_REPORTS if r in line), None)
            if report:
                pytest.fail("lagwatch (pid %d, %s) has a sanitizer report, %r:\n%s" % (
                    self.proc.pid, self.log.name, report, "\n".join(lines[i:i + 60])),
                    pytrace=False)


@pytest.fixture
def lagwatch_factory(tmp_path):
    started = []

    def start(config_text, server_extra=""):
        lw = Lagwatch(config_text, tmp_path, server_extra)
        started.append(lw)
        return lw

    yield start
    reports = []
    for lw in started:
        try:
            lw.stop()
        except pytest.fail.Exception as e:  # a sanitizer report: stop the others first
            reports.append(str(e))
    if reports:
        pytest.fail("\n\n".join(reports), pytrace=False)


def assert_delay_in_force(seen, delay):
    """The apply delay is what the replica shows: the truth interval of every figure of
    `seen` ([(figure, low, high)], ServerSet.lag_against_truth) reaches [delay - 1, delay + 1]
    (PostgreSQL holds each commit `delay` s; MariaDB's saws through [delay - 1, delay + 1)).
    Probes that a busy machine spaces out widen an interval; they do not move it off."""
    off = [(v, low, high) for v, low, high in seen if high < delay - 1 or low >= delay + 1]
    assert not off, "the true lag is not the %s s delay at: %r (of %d)" % (delay, off, len(seen))


def iso_seconds(text):
    """Epoch seconds of lagwatch's ISO-8601 UTC time ("2026-11-24T20:00:00.123Z")."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def wait_for(what, predicate, timeout, interval=0.1):
    """Polls `predicate` until it returns a truthy value; fails naming `what` and the last value."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail("timed out after %ss waiting for %s (last: %r)" % (timeout, what, last))
