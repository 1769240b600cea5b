"""The soak's parts (tests/soak/run drives them): what is read from /proc about lagwatch, the
flap driver, the HTTP clients, and the judgements — flatness, alert accounting, attribution.

The judgements are plain functions over recorded figures, pinned down by
tests/soak/test_soak.py (a synthetic leak of 1 KiB/s is caught, a lost resolve is caught)."""
import collections
import http.client
import os
import random
import re
import socket
import statistics
import threading
import time
from datetime import datetime

# ---- What /proc says about a process ------------------------------------------------------

TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
              "05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
              "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}


def _tcp_sockets(pid):
    """{inode: (local_port, remote_port, state)} of every TCP socket in pid's network
    namespace (the caller picks out the process's own by the inodes of its fds)."""
    table = {}
    for name in ("tcp", "tcp6"):
        try:
            f = open("/proc/%d/net/%s" % (pid, name))
        except FileNotFoundError:
            continue
        with f:
            next(f, None)
            for line in f:
                p = line.split()
                if len(p) < 10:
                    continue
                table[int(p[9])] = (int(p[1].rsplit(":", 1)[1], 16),
                                    int(p[2].rsplit(":", 1)[1], 16), TCP_STATES.get(p[3], p[3]))
    return table


def _socket_inodes(pid, table):
    """Inodes of the sockets listed in /proc/pid/net/<table> (unix, udp, udp6)."""
    inodes = set()
    try:
        with open("/proc/%d/net/%s" % (pid, table)) as f:
            header = next(f, "").split()
            column = header.index("Inode") if "Inode" in header else 9
            for line in f:
                p = line.split()
                if len(p) > column and p[column].isdigit():
                    inodes.add(int(p[column]))
    except FileNotFoundError:
        pass
    return inodes


def _status(pid):
    """/proc/pid/status as {key: first word of the value}."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.split()[0] if value.split() else ""
    return out


def _cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fd_kind(link, tcp, other_sockets, db_ports, listen_port, receiver_ports):
    """(class, kind) of one of lagwatch's fds from its /proc/pid/fd link.

    class: "db" (a TCP socket to a database port), "inbound" (an accepted HTTP connection: the
    soak's clients drive their number), "outbound" (to a router or webhook receiver), "other"
    (listener, epoll, eventfd, pipes, files, ...: a fixed set in a healthy process)."""
    m = re.fullmatch(r"socket:\[(\d+)\]", link)
    if m and int(m.group(1)) in tcp:
        local, remote, state = tcp[int(m.group(1))]
        if state == "LISTEN":
            return "other", "tcp listen :%d" % local
        if remote in db_ports:
            return "db", "db " + state
        if local == listen_port:
            return "inbound", "inbound " + state
        if remote in receiver_ports:
            return "outbound", "outbound " + state
        return "other", "tcp %s -> :%d" % (state, remote)
    if m and int(m.group(1)) in other_sockets.get("unix", ()):
        return "other", "unix socket"
    if m and int(m.group(1)) in other_sockets.get("udp", ()):
        return "other", "udp socket"
    if m:  # e.g. a TCP socket created but not yet connecting: not in /proc/net/tcp yet
        return "other", "socket (unlisted)"
    if link.startswith("anon_inode:"):
        return "other", link
    if link.startswith("pipe:"):
        return "other", "pipe"
    return "other", link


def sample_process(pid, db_ports, listen_port, receiver_ports):
    """One sample of lagwatch's figures; raises OSError once the process is gone."""
    t = time.time()
    st = _status(pid)
    if "VmRSS" not in st:  # exited, a zombie until its parent reaps it
        raise ProcessLookupError("it has exited")
    tcp = _tcp_sockets(pid)
    other_sockets = {"unix": _socket_inodes(pid, "unix"),
                     "udp": _socket_inodes(pid, "udp") | _socket_inodes(pid, "udp6")}
    classes = collections.Counter()
    kinds = collections.Counter()
    fd_dir = "/proc/%d/fd" % pid
    fds = 0
    for fd in os.listdir(fd_dir):
        try:
            link = os.readlink(os.path.join(fd_dir, fd))
        except FileNotFoundError:  # closed between listdir and readlink
            continue
        fds += 1
        cls, kind = fd_kind(link, tcp, other_sockets, db_ports, listen_port,
                             receiver_ports)
        classes[cls] += 1
        kinds[kind] += 1
    return {
        "t": t,
        "rss_kib": int(st["VmRSS"]),
        "anon_kib": int(st.get("RssAnon", 0)),
        "file_kib": int(st.get("RssFile", 0)),
        "threads": len(os.listdir("/proc/%d/task" % pid)),
        "fds": fds,
        "db": classes["db"],
        "db_established": kinds["db ESTABLISHED"],
        "inbound": classes["inbound"],
        "outbound": classes["outbound"],
        "other": classes["other"],
        # What lagwatch holds of itself: neither the clients' connections nor the databases'
        # (whose number follows the flaps: a stopped node has none); judged separately.
        "own_fds": fds - classes["inbound"] - classes["db"],
        "cpu_s": _cpu_seconds(pid),
        "kinds": dict(kinds),
    }


def mapping_rss(pid):
    """{mapping: Rss KiB} from /proc/pid/smaps, a mapping named by its path (or [heap],
    [stack]) and, for anonymous ones, its start address: a malloc arena keeps its start as it
    grows."""
    out, name = {}, None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$", line)
            if m:
                name = m.group(2) or "anon@" + m.group(1)
            elif line.startswith("Rss:") and name is not None:
                out[name] = out.get(name, 0) + int(line.split()[1])
    return out


def mapping_growth(before, after, top=6):
    """The mappings whose RSS grew most between two mapping_rss() readings: [(KiB, name)]."""
    grown = sorted(((after.get(k, 0) - before.get(k, 0), k) for k in set(before) | set(after)),
                   reverse=True)
    return [(kib, name) for kib, name in grown[:top] if kib > 0]


class Sampler(threading.Thread):
    """Samples a process every `every` seconds into .samples until stop()."""

    def __init__(self, pid, every, **ports):
        super().__init__(name="sampler", daemon=True)
        self.pid, self.every, self.ports = pid, every, ports
        self.samples = []
        self.error = None
        self._halt = threading.Event()

    def run(self):
        next_at = time.monotonic()
        while not self._halt.is_set():
            try:
                self.samples.append(sample_process(self.pid, **self.ports))
            except OSError as e:
                self.error = "lagwatch (pid %d) is gone: %s" % (self.pid, e)
                return
            next_at += self.every
            self._halt.wait(max(0.0, next_at - time.monotonic()))

    def stop(self):
        self._halt.set()
        if self.is_alive():
            self.join(10)


# ---- Judgements -------------------------------------------------------------------------

def thirds(samples):
    """(warm-up, middle, last) thirds of a run's samples, by count."""
    n = len(samples) // 3
    return samples[:n], samples[n:2 * n], samples[2 * n:]


def growth(samples, key):
    """How much `key` grew from the middle third of the run to the last third: the difference
    of their means. The first third is warm-up (allocator arenas, caches, code paged in)."""
    _, middle, last = thirds(samples)
    if not middle or not last:
        return None
    return statistics.fmean(s[key] for s in last) - statistics.fmean(s[key] for s in middle)


def slope_per_minute(samples, key):
    """Least-squares slope of `key` over the middle and last thirds, per minute (reported, not
    judged: one allocator step in the window tilts it)."""
    _, middle, last = thirds(samples)
    pts = [(s["t"], s[key]) for s in middle + last]
    if len(pts) < 3:
        return None
    mt = statistics.fmean(t for t, _ in pts)
    mv = statistics.fmean(v for _, v in pts)
    var = sum((t - mt) ** 2 for t, _ in pts)
    if var == 0:
        return None
    return 60 * sum((t - mt) * (v - mv) for t, v in pts) / var


def parse_time(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def webhook_transitions(requests):
    """Every alert of every webhook POST that was accepted, in arrival order:
    dicts with arrived, key (dedup_key), status, starts_at, cluster, node, condition."""
    out = []
    for r in requests:
        if r.method != "POST" or not 200 <= r.status < 300:
            continue
        for a in r.json["alerts"]:
            labels = a["labels"]
            out.append({"arrived": r.arrived, "key": a["annotations"]["dedup_key"],
                        "status": a["status"], "starts_at": parse_time(a["startsAt"]),
                        "cluster": labels["cluster"], "node": labels.get("node", ""),
                        "condition": labels["condition"]})
    return out


def account(transitions, outages=()):
    """Pairs each alert's firings with its resolves, per dedup key, in arrival order.

    Returns (firings, problems): firings are dicts (those of the transition, plus
    resolved_arrived, None while open); problems name every firing left open (a lost resolve),
    every resolve of nothing (a lost trigger) and every firing repeated while open.

    One exception: an alert that fired and resolved while the receiver could not be told
    (`outages`: (start, end) wall-clock windows when it hung or was down) arrives as one
    resolved alert whose startsAt is its firing, as lagwatch's webhook sends it; that counts
    as its firing and its resolve, delivered together."""
    firings, problems, open_by_key = [], [], {}
    for t in transitions:
        key = t["key"]
        if t["status"] == "firing":
            if key in open_by_key:
                problems.append("%s: firing again at %.3f while its firing since %.3f is open" % (
                    key, t["arrived"], open_by_key[key]["starts_at"]))
                continue
            f = dict(t, resolved_arrived=None)
            firings.append(f)
            open_by_key[key] = f
        else:
            f = open_by_key.pop(key, None)
            if f is None and any(start < t["arrived"] and end > t["starts_at"]
                                 for start, end in outages):
                firings.append(dict(t, status="firing", resolved_arrived=t["arrived"]))
            elif f is None:
                problems.append("%s: resolved at %.3f but no firing of it was received" % (
                    key, t["arrived"]))
            else:
                f["resolved_arrived"] = t["arrived"]
    for key, f in open_by_key.items():
        problems.append("%s: fired (startsAt %.3f) and was never resolved" % (key, f["starts_at"]))
    return firings, problems


def logged_firings(log_text):
    """[(dedup_key, fired, resolved or None)] from lagwatch's "alert firing" / "alert resolved"
    log lines (logfmt): what lagwatch itself decided, independent of any delivery."""
    out, open_by_key = [], {}
    for m in re.finditer(r'^ts=(\S+) level=\w+ msg="alert (firing|resolved)" dedup_key=(\S+)',
                         log_text, re.M):
        ts, what, key = parse_time(m.group(1)), m.group(2), m.group(3)
        if what == "firing":
            open_by_key[key] = [key, ts, None]
            out.append(open_by_key[key])
        elif key in open_by_key:
            open_by_key.pop(key)[2] = ts
    return [tuple(x) for x in out]


def undelivered(logged, firings, must_after):
    """Firings lagwatch logged that lasted at least `must_after` seconds (group_wait plus a
    cycle and slack: long enough that the receiver must have been told) but that the receiver
    never got as a firing of their own (startsAt within a second of the logged time). A firing
    folded into an earlier one of the same key, which the receiver never heard resolve, is
    undelivered too: the receiver missed a resolve and a trigger."""
    missing = []
    for key, fired, resolved in logged:
        if resolved is not None and resolved - fired < must_after:
            continue
        if not any(f["key"] == key and abs(f["starts_at"] - fired) < 1.0 for f in firings):
            missing.append((key, fired, resolved))
    return missing


class Flap:
    """One scenario put on one replica and undone."""

    def __init__(self, cluster, node, apply, undo, expect, hold):
        self.cluster, self.node, self.apply, self.undo = cluster, node, apply, undo
        self.expect = expect  # the condition it must raise when held long enough
        self.hold = hold      # planned seconds between applied and undo
        self.started = self.applied = self.undoing = self.restored = None
        self.error = None

    @property
    def held(self):
        """Seconds the scenario was in force (applied to undo begun), or None."""
        if self.applied is None or self.undoing is None:
            return None
        return self.undoing - self.applied

    def __repr__(self):
        return "<%s/%s %s held %s>" % (self.cluster, self.node, self.apply,
                                       "%.1fs" % self.held if self.held is not None else "-")


def attribute(firings, flaps, grace):
    """Splits firings into (explained, unexplained). A firing is explained by a flap of its
    cluster (of its node, for per-node conditions) when it started between the flap's start and
    `grace` seconds after the flap was undone (a restarted replica catching up may lag)."""
    explained, unexplained = [], []
    for f in firings:
        by = [fl for fl in flaps if fl.cluster == f["cluster"] and fl.started is not None and
              (not f["node"] or fl.node == f["node"]) and
              fl.started - 1.0 <= f["starts_at"] <= (fl.restored or time.time()) + grace]
        (explained if by else unexplained).append(f)
    return explained, unexplained


def missed_flaps(flaps, firings, must_hold):
    """Flaps held at least `must_hold` seconds whose expected condition never fired on their
    node while they were in force."""
    missed = []
    for fl in flaps:
        if fl.held is None or fl.held < must_hold:
            continue
        if not any(f["cluster"] == fl.cluster and f["node"] == fl.node and
                   f["condition"] == fl.expect and
                   fl.started - 1.0 <= f["starts_at"] <= fl.restored + 1.0 for f in firings):
            missed.append(fl)
    return missed


# ---- Flapping -----------------------------------------------------------------------------

# (apply, undo, condition it raises) per engine: the fixture scripts' scenario names.
SCENARIOS = {
    "postgres": [("pause", "resume", "replica_not_applying"),
                 ("stop", "start", "node_down"),
                 ("hang", "unhang", "node_down"),
                 ("stop-receiver", "start-receiver", "replica_disconnected")],
    "mysql": [("stop-sql", "start-sql", "replica_not_applying"),
              ("stop", "start", "node_down"),
              ("hang", "unhang", "node_down"),
              ("stop-io", "start-io", "replica_disconnected")],
}


class Driver(threading.Thread):
    """Flaps the replicas of one cluster, one at a time, until stop(): each scenario in turn on
    each replica, held `hold`..`hold`+2 s (every `short_every`-th flap only `short` s, below the
    alerts' `for`), then undone; the next flap waits until lagwatch lists the last flapped
    replica again (at most 30 s), then `gap` seconds."""

    def __init__(self, servers, cluster, listed, hold, gap, short, short_every, seed):
        super().__init__(name="driver-" + cluster, daemon=True)
        self.servers, self.cluster, self.listed = servers, cluster, listed
        self.hold, self.gap, self.short, self.short_every = hold, gap, short, short_every
        self.random = random.Random(seed)
        self.flaps = []
        self.error = None
        self._halt = threading.Event()

    def stop(self):
        self._halt.set()

    def run(self):
        replicas = self.servers.nodes[1:]
        scenarios = SCENARIOS[self.servers.engine]
        i = 0
        try:
            while not self._halt.is_set():
                node = replicas[i % len(replicas)]
                apply, undo, expect = scenarios[(i // len(replicas)) % len(scenarios)]
                short = self.short_every and i % self.short_every == self.short_every - 1
                hold = self.short if short else self.hold + self.random.uniform(0, 2)
                fl = Flap(self.cluster, node, apply, undo, expect, hold)
                self.flaps.append(fl)
                flap(self.servers, fl)
                deadline = time.time() + 30
                while time.time() < deadline and not self.listed(self.cluster, node):
                    time.sleep(0.25)
                self._halt.wait(self.gap)
                i += 1
        except Exception as e:  # reported by the runner, which then fails the soak
            self.error = "%s: %s" % (type(e).__name__, e)


def flap(servers, fl):
    """Puts `fl` on its replica, holds it, undoes it (also when applying failed half-way: a
    stop that timed out may have stopped), stamping its times."""
    fl.started = time.time()
    try:
        servers.scenario(fl.node, fl.apply)
        fl.applied = time.time()
        # Held for its time even when the soak is being stopped: undone as planned, next.
        time.sleep(max(0.0, fl.applied + fl.hold - time.time()))
    finally:
        fl.undoing = time.time()
        for attempt in range(3):
            try:
                servers.scenario(fl.node, fl.undo)
                break
            except RuntimeError as e:
                fl.error = str(e)
                if attempt == 2:
                    raise
                time.sleep(2)
        fl.restored = time.time()


# ---- HTTP clients -------------------------------------------------------------------------

def http_get(port, path, timeout):
    """(status, headers, body bytes) over a fresh connection, as most scrapers do."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


class Clients:
    """What hits lagwatch's HTTP API during the soak, each in its own thread:
    - scrapers: GET /metrics every `scrape_every` s, latency recorded;
    - a reader of /api/v1/clusters, the status page and the replica lists, every second;
    - long-pollers per cluster: replica list with ?index=<current>&wait=3s, in a loop;
    - an impatient long-poller per cluster: starts a long poll (wait=10s) and hangs up after
      0.2 s, every second, so lagwatch holds parked polls whose clients are gone."""

    def __init__(self, port, clusters, scrapers=2, scrape_every=0.5, pollers=3):
        self.port = port
        self.clusters = clusters
        self.scrape_every = scrape_every
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self.metrics = []  # (time, seconds, status or error text)
        self.counts = collections.Counter()
        self.errors = collections.Counter()
        self.threads = [threading.Thread(target=self._scrape, name="scraper-%d" % i, daemon=True)
                        for i in range(scrapers)]
        self.threads.append(threading.Thread(target=self._read, name="reader", daemon=True))
        for c in clusters:
            self.threads += [threading.Thread(target=self._long_poll, args=(c,), daemon=True,
                                              name="poller-%s-%d" % (c, i))
                             for i in range(pollers)]
            self.threads.append(threading.Thread(target=self._impatient, args=(c,), daemon=True,
                                                 name="impatient-" + c))

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self._halt.set()
        for t in self.threads:
            if t.is_alive():
                t.join(20)

    def _count(self, what, error=None):
        with self._lock:
            self.counts[what] += 1
            if error:
                self.errors["%s: %s" % (what, error)] += 1

    def _scrape(self):
        while not self._halt.is_set():
            began = time.monotonic()
            try:
                status, _, _ = http_get(self.port, "/metrics", timeout=10)
                outcome = status
            except OSError as e:
                outcome = "%s: %s" % (type(e).__name__, e)
            took = time.monotonic() - began
            with self._lock:
                self.metrics.append((time.time(), took, outcome))
            self._halt.wait(max(0.0, self.scrape_every - took))

    def _read(self):
        paths = ["/api/v1/clusters", "/"] + ["/api/v1/clusters/%s/replicas" % c
                                              for c in self.clusters]
        while not self._halt.is_set():
            for p in paths:
                try:
                    status, _, _ = http_get(self.port, p, timeout=10)
                    self._count("reads", None if status == 200 else "status %d" % status)
                except OSError as e:
                    self._count("reads", type(e).__name__)
            self._halt.wait(1.0)

    def _index(self, cluster):
        status, headers, _ = http_get(self.port, "/api/v1/clusters/%s/replicas" % cluster, 10)
        return int(headers["X-Lagwatch-Index"]) if status == 200 else 0

    def _long_poll(self, cluster):
        index = 0
        while not self._halt.is_set():
            try:
                path = "/api/v1/clusters/%s/replicas" % cluster
                if index:
                    path += "?index=%d&wait=3s" % index
                status, headers, _ = http_get(self.port, path, timeout=15)
                if status == 200:
                    new = int(headers["X-Lagwatch-Index"])
                    self._count("long polls woken by a change" if index and new != index
                                else "long polls answered")
                    index = new
                else:
                    self._count("long polls", "status %d" % status)
                    self._halt.wait(0.5)
            except OSError as e:
                self._count("long polls", type(e).__name__)
                self._halt.wait(0.5)

    def _impatient(self, cluster):
        while not self._halt.is_set():
            try:
                index = self._index(cluster)
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                    s.sendall(("GET /api/v1/clusters/%s/replicas?index=%d&wait=10s HTTP/1.1\r\n"
                               "Host: 127.0.0.1\r\n\r\n" % (cluster, index)).encode())
                    self._halt.wait(0.2)
                self._count("long polls abandoned")
            except OSError as e:
                self._count("long polls abandoned", type(e).__name__)
            self._halt.wait(1.0)


class ReceiverOutages(threading.Thread):
    """Takes the alert receiver and the router through two outages while the flaps go on:
    first they hang (accept, read, never answer) for a window, then they are released
    unanswered and restarted; later they are down (connection refused) for a window. Each
    window is (start, end) in seconds after `t0`. lagwatch must neither queue without bound
    nor lose what changed meanwhile: once they answer again, the latest list and every alert
    transition arrive (judged by the soak's other checks). `done` holds what happened, as
    (what, began, ended) wall-clock times."""

    def __init__(self, receivers, t0, hang, down):
        super().__init__(daemon=True)
        self.receivers, self.t0, self.hang, self.down = receivers, t0, hang, down
        self.done, self.error = [], None
        self._quit = threading.Event()

    def _until(self, offset):
        return not self._quit.wait(max(0.0, self.t0 + offset - time.time()))

    def _restore(self):
        for r in self.receivers:
            r.hang(0)
            r.stop()  # releases what is held, unanswered
            r.start()

    def run(self):
        try:
            for what, (start, end), begin in (("hung", self.hang, lambda r: r.hang(3600)),
                                              ("down", self.down, lambda r: r.stop())):
                if not self._until(start):
                    return
                began = time.time()
                for r in self.receivers:
                    begin(r)
                ended = None
                try:
                    self._until(end)
                finally:
                    self._restore()
                    ended = time.time()
                    self.done.append((what, began, ended))
        except Exception as e:  # reported by the soak as a failed check
            self.error = "receiver outage: %r" % e

    def stop(self):
        """Ends any outage in force (the receivers answer again); idempotent."""
        self._quit.set()
        if self.is_alive():
            self.join(30)
