"""Shared helpers of the bench/ scripts: real fixture servers on 127.0.0.1, a lagwatch
process, machine description, Markdown results. Everything started here is stopped by PID
(also on failure and on SIGINT/SIGTERM) by Stack.close()."""
import atexit
import datetime
import json
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from processes import stop_process, wait_or_kill  # noqa: E402  (shared with the tests)

FIXTURE = {"postgres": os.path.join(ROOT, "scripts", "fixtures", "pg"),
           "mysql": os.path.join(ROOT, "scripts", "fixtures", "mysql")}
PREFIX = {"postgres": "pg", "mysql": "db"}
RESULTS = os.path.join(ROOT, "bench", "results")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port_block(count):
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + count > 65000:
            continue
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
    raise RuntimeError("no free block of %d ports" % count)


def lagwatch_binary():
    """A private copy of build/lagwatch (built by scripts/build if missing), so concurrent
    rebuilds of build/ do not change the binary under a running benchmark."""
    src = os.environ.get("LAGWATCH_BIN", os.path.join(ROOT, "build", "lagwatch"))
    if not os.path.exists(src):
        log("building lagwatch (scripts/build)")
        subprocess.run([os.path.join(ROOT, "scripts", "build")], check=True)
    d = tempfile.mkdtemp(prefix="lw-bench-bin-")
    atexit.register(shutil.rmtree, d, True)
    dst = os.path.join(d, "lagwatch")
    shutil.copy2(src, dst)
    log("lagwatch binary: %s (copied to %s)" % (src, dst))
    return dst


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = "%.1f GiB" % (int(line.split()[1]) / 1024 / 1024)
    return "nproc %d, %s, %s RAM, kernel %s" % (os.cpu_count(), model, mem, os.uname().release)


def pct(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def median(values):
    return statistics.median(values) if values else float("nan")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    return 0


def threads(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Threads"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tck  # utime + stime


def http_get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, dict(r.headers), r.read()


def scrape_latencies(url, n, first_byte=None):
    """Latency (ms) of n sequential GETs, each on a new connection, timed by curl
    (time_total: connect to last byte), so the figure is the server's and not Python reading
    a large body. Returns (latencies, size of the last body). With a list as `first_byte`,
    also appends to it each request's time to its first byte (time_starttransfer, ms): the
    server's time to start answering, without the transfer of the body."""
    out = []
    size = 0
    for _ in range(n):
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w",
                            "%{time_total} %{size_download} %{time_starttransfer}",
                            "--max-time", "10", url], capture_output=True, text=True, check=True)
        seconds, size, starttransfer = r.stdout.split()
        out.append(float(seconds) * 1000)
        if first_byte is not None:
            first_byte.append(float(starttransfer) * 1000)
        size = int(size)
    return out, size


class Stack:
    """Everything a benchmark started, stopped in reverse order by close()."""

    def __init__(self):
        self.closers = []
        self.tmp = tempfile.mkdtemp(prefix="lw-bench-")
        signal.signal(signal.SIGTERM, self._signal)
        signal.signal(signal.SIGINT, self._signal)

    def _signal(self, signum, _frame):
        log("signal %d: stopping everything started" % signum)
        self.close()
        sys.exit(128 + signum)

    def add(self, fn):
        self.closers.append(fn)

    def close(self):
        while self.closers:
            fn = self.closers.pop()
            try:
                fn()
            except Exception as e:  # keep stopping the rest
                log("cleanup error:", e)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def process(self, argv, env=None, name="proc"):
        logf = open(os.path.join(self.tmp, "%s.log" % name), "w+")
        p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, env=env,
                             start_new_session=True)

        def stop():
            stop_process(p, grace_seconds=10)
            logf.close()
        self.add(stop)
        p.logfile = logf
        return p

    def servers(self, engine, replicas=2, load_rate=None):
        # its own /tmp directory: the fixture's server user must reach it
        s = Servers(engine, tempfile.mkdtemp(prefix="lw-bench-%s-" % PREFIX[engine]), replicas)
        self.add(s.down)
        s.up()
        if load_rate:
            s.run("load", s.dir, "--rate", str(load_rate))
        return s

    def lagwatch(self, binary, config_text, server_extra=""):
        port = free_port_block(1)
        cfg = os.path.join(self.tmp, "lagwatch-%d.toml" % port)
        with open(cfg, "w") as f:
            f.write('[server]\nlisten = "127.0.0.1:%d"\n%s\n%s' % (port, server_extra,
                                                                    config_text))
        p = self.process([binary, "--config", cfg], name="lagwatch-%d" % port)
        p.url = "http://127.0.0.1:%d" % port
        p.config = cfg
        deadline = time.time() + 60
        while time.time() < deadline:
            if p.poll() is not None:
                p.logfile.seek(0)
                raise RuntimeError("lagwatch exited: " + p.logfile.read()[-2000:])
            try:
                if http_get(p.url + "/-/ready", 2)[0] == 200:
                    return p
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("lagwatch not ready in 60 s")


def clusters(url):
    return json.loads(http_get(url + "/api/v1/clusters")[2])["clusters"]


def node_of(url, cluster, node):
    for c in clusters(url):
        if c["cluster"] == cluster:
            for n in c["nodes"]:
                if n["name"] == node:
                    return n
    return None


class Session:
    """One psql/mariadb client process reading statements from a pipe; the client flushes
    each result, so a query's answer marks the moment it was done."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)

    def query(self, sql):
        self.proc.stdin.write(sql.rstrip().rstrip(";") + ";\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the session ended (exit %s)" % self.proc.wait())
        return line.strip()

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()  # the client exits at end of input
            wait_or_kill(self.proc, grace_seconds=10)


class Servers:
    def __init__(self, engine, directory, replicas):
        self.engine = engine
        self.dir = directory
        self.fixture = FIXTURE[engine]
        self.nodes = ["%s%d" % (PREFIX[engine], i + 1) for i in range(replicas + 1)]
        self.base = free_port_block(replicas + 1)
        self.started = False

    def run(self, *args, check=True, timeout=300):
        r = subprocess.run([self.fixture, *args], capture_output=True, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError("%s %s failed (%d): %s %s" % (self.fixture, " ".join(args),
                                                             r.returncode, r.stdout, r.stderr))
        return r.stdout.strip()

    def up(self):
        log("starting %s fixture on ports %d.." % (self.engine, self.base))
        flag = "--standbys" if self.engine == "postgres" else "--replicas"
        self.started = True
        self.run("up", self.dir, "--port", str(self.base), flag, str(len(self.nodes) - 1))

    def down(self):
        if self.started:
            subprocess.run([self.fixture, "load-stop", self.dir], capture_output=True,
                           timeout=60)
            subprocess.run([self.fixture, "down", self.dir], capture_output=True, timeout=180)
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def port(self, node):
        return self.base + self.nodes.index(node)

    def sql(self, node, query):
        return self.run("sql", self.dir, node, query)

    def scenario(self, node, action, *arg):
        return self.run("scenario", self.dir, node, action, *arg)

    def session(self, node):
        """A superuser session kept open on node: session.query(sql) returns the first line
        of the answer in a few milliseconds, where sql() starts a client each time."""
        return Session([self.fixture, "sql", self.dir, node])

    @property
    def password_file(self):
        return os.path.join(self.dir, "lagwatch.password")

    @property
    def password(self):
        with open(self.password_file) as f:
            return f.read().strip()

    def dsn(self, node, database="postgres"):
        if self.engine == "postgres":
            return "postgresql://lagwatch@127.0.0.1:%d/%s?sslmode=disable" % (
                self.port(node), database)
        return "mysql://lagwatch@127.0.0.1:%d/" % self.port(node)

    def toml(self, cluster="orders", interval="1s", timeout="800ms", extra="",
             database="postgres", nodes=None):
        lines = ["[[cluster]]", 'name = "%s"' % cluster, 'engine = "%s"' % self.engine,
                 'interval = "%s"' % interval, 'timeout = "%s"' % timeout, extra]
        for n in nodes or self.nodes:
            lines += ["[[cluster.node]]", 'name = "%s"' % n,
                      'dsn = "%s"' % self.dsn(n, database),
                      'password_file = "%s"' % self.password_file]
        return "\n".join(lines) + "\n"

    def truth(self, node):
        """(replica clock time, now − the newest replicated row's primary insert time) on node."""
        if self.engine == "postgres":
            q = ("SELECT extract(epoch FROM clock_timestamp()), "
                 "extract(epoch FROM clock_timestamp() - max(at)) FROM writes")
        else:
            q = ("SELECT UNIX_TIMESTAMP(NOW(6)), "
                 "UNIX_TIMESTAMP(NOW(6)) - UNIX_TIMESTAMP(MAX(at)) FROM writes")
        when, lag = re.split(r"[|\s]+", self.sql(node, q).strip())
        return float(when), float(lag)

    def heartbeat_setup(self):
        if self.engine == "postgres":
            stmts = ["CREATE SCHEMA IF NOT EXISTS lagwatch",
                     "CREATE TABLE IF NOT EXISTS lagwatch.heartbeat "
                     "(cluster text PRIMARY KEY, ts double precision NOT NULL)",
                     "GRANT USAGE ON SCHEMA lagwatch TO lagwatch",
                     "GRANT SELECT, INSERT, UPDATE ON lagwatch.heartbeat TO lagwatch"]
        else:
            stmts = ["CREATE DATABASE IF NOT EXISTS lagwatch",
                     "CREATE TABLE IF NOT EXISTS lagwatch.heartbeat "
                     "(cluster VARCHAR(64) PRIMARY KEY, ts DOUBLE NOT NULL)",
                     "GRANT SELECT, INSERT, UPDATE ON lagwatch.heartbeat "
                     "TO 'lagwatch'@'127.0.0.1'"]
        for s in stmts:
            self.sql(self.nodes[0], s)
        self.run("wait-caught-up", self.dir)


def iso_seconds(text):
    """Epoch seconds of lagwatch's ISO-8601 UTC time."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def probe_truth(servers, node, work):
    """Runs work() while probing servers.truth(node) back to back in a thread.
    Returns (probes, work's result)."""
    probes, done = [], threading.Event()

    def loop():
        while not done.is_set():
            probes.append(servers.truth(node))

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        result = work()
    finally:
        done.set()
        t.join()
    return sorted(probes), result


def bound_by_truth(figures, probes):
    """[(figure, low, high)] for figures [(sample time, value)]: the truth at each sample
    time lies in [low, high], from the probes [(time, lag)] on either side (lag grows at most
    1 s per s). Figures without a probe on both sides are left out."""
    out = []
    for at, value in figures:
        before = [(p, t) for p, t in probes if p <= at]
        after = [(p, t) for p, t in probes if p >= at]
        if before and after:
            (q, tq), (p, tp) = before[-1], after[0]
            out.append((value, tp - (p - at), tq + (at - q)))
    return out


def write_result(name, title, command, body_md):
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, name + ".md")
    with open(path, "w") as f:
        f.write("# %s\n\n" % title)
        f.write("Produced by `%s` on %s (UTC).\n\n" % (command,
                time.strftime("%Y-%m-%d %H:%M", time.gmtime())))
        f.write("Machine: %s.\n\n" % machine())
        f.write(body_md.rstrip() + "\n")
    log("wrote", os.path.relpath(path, ROOT))
    return path


def command_line():
    return " ".join(shlex.quote(a) for a in ["bench/" + os.path.basename(sys.argv[0])]
                    + sys.argv[1:])
