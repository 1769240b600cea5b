#!/usr/bin/env python3
"""An application-side read router for lagwatch, standard library only.

A background thread long-polls GET /api/v1/clusters/<cluster>/replicas?index=N&wait=...
(lagwatch answers when the list's generation passes N, or after `wait`), and keeps the
latest list. pick() chooses where one read goes: a listed replica, at random in proportion
to its weight (lagwatch lowers the weight of lagging replicas and of degraded keepers), or
the primary when the list's fallback says "primary". On errors the last good list is kept
and the poller backs off exponentially.

    router = ReplicaRouter("http://127.0.0.1:9817", "orders")
    router.start()
    target = router.pick()          # Target(node="pg2", address="10.0.0.2:5432", role="replica")
    ...connect to target.host, target.port...
    router.stop()

Run it to watch a cluster's list: python3 lagwatch_router.py --url http://127.0.0.1:9817 orders
"""
import argparse
import json
import random
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import namedtuple


class Target(namedtuple("Target", "node address role")):
    """Where one read goes. role is "replica" or "primary"."""

    @property
    def host(self):
        return self.address.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self):
        return int(self.address.rsplit(":", 1)[1])


class NoReadTarget(Exception):
    """No replica is listed and the list does not name a primary to fall back to."""


class ReplicaRouter:
    def __init__(self, url, cluster, wait=30.0, max_lag=None, min_backoff=0.2, max_backoff=30.0,
                 on_change=None, rng=None):
        """url: lagwatch's base URL. wait: seconds a long poll may last (lagwatch caps it at 10
        minutes and adds up to wait/16 of jitter). max_lag: an optional per-router staleness
        bound in seconds, applied by lagwatch. on_change(body) is called, on the poller thread,
        with each new list."""
        query = {}
        if max_lag is not None:
            query["max_lag"] = "%gs" % max_lag
        self._base = "%s/api/v1/clusters/%s/replicas" % (url.rstrip("/"),
                                                         urllib.parse.quote(cluster, safe=""))
        self._query = query
        self._wait = wait
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._on_change = on_change
        self._random = rng or random.Random()
        self._lock = threading.Lock()
        self._list = None          # the latest body, or None before the first answer
        self._received_at = None   # time.monotonic() of the latest good answer
        self._index = 0
        self._stop = threading.Event()
        self._thread = None
        self.errors = 0            # failed polls so far
        self.last_error = None

    # --- the read side -------------------------------------------------------------------

    def current(self):
        """The latest list body (a dict as lagwatch sent it), or None before the first one."""
        with self._lock:
            return self._list

    def age(self):
        """Seconds since lagwatch last answered, or None before the first answer. Grows while
        lagwatch is unreachable: the caller decides how stale is too stale."""
        with self._lock:
            return None if self._received_at is None else time.monotonic() - self._received_at

    def wait_for_list(self, timeout):
        """Blocks until a first list arrived; returns it, or None after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.current()
            if body is not None:
                return body
            self._stop.wait(0.05)
        return self.current()

    def pick(self):
        """The Target for one read. Raises NoReadTarget when there is none."""
        body = self.current()
        if body is None:
            raise NoReadTarget("no replica list from lagwatch yet")
        return choose(body, self._random)

    # --- the poller ------------------------------------------------------------------------

    def start(self):
        self._thread = threading.Thread(target=self._run, name="lagwatch-router", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout=5.0):
        """Stops polling. An outstanding long poll is abandoned (its thread is a daemon and ends
        when lagwatch answers or the socket times out)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _url(self):
        query = dict(self._query)
        if self._index:
            query.update(index=str(self._index), wait="%gs" % self._wait)
        return self._base + ("?" + urllib.parse.urlencode(query) if query else "")

    def _run(self):
        backoff = self._min_backoff
        while not self._stop.is_set():
            try:
                # lagwatch holds the request up to wait + wait/16; allow some more before
                # calling the connection dead.
                timeout = self._wait * 1.1 + 5 if self._index else 10
                with urllib.request.urlopen(self._url(), timeout=timeout) as response:
                    body = json.loads(response.read().decode())
                    index = int(response.headers.get("X-Lagwatch-Index", "0"))
                self._accept(body, index)
                backoff = self._min_backoff
            except (OSError, ValueError) as e:  # URLError, HTTPError, timeouts, bad JSON
                self.errors += 1
                self.last_error = e
                # Full jitter, so that many routers do not return in step after an outage.
                self._stop.wait(self._random.uniform(0, backoff))
                backoff = min(backoff * 2, self._max_backoff)

    def _accept(self, body, index):
        if index < self._index:
            index = 0  # went backwards (another lagwatch behind a balancer?): start over
        with self._lock:
            changed = self._list is None or body.get("generation") != self._list.get("generation")
            self._list = body
            self._received_at = time.monotonic()
            self._index = index
        if changed and self._on_change is not None:
            self._on_change(body)


def choose(body, rng=random):
    """The Target for one read from a replica list body: a replica by weight, else the primary
    when fallback is "primary". Raises NoReadTarget otherwise."""
    replicas = [r for r in body.get("replicas") or [] if r.get("weight", 0) > 0]
    if replicas:
        r = rng.choices(replicas, weights=[r["weight"] for r in replicas])[0]
        return Target(r["node"], r["address"], "replica")
    primary = body.get("primary")
    if body.get("fallback") == "primary" and primary:
        return Target(primary["node"], primary["address"], "primary")
    raise NoReadTarget("no replica is fit to serve reads (fallback: %s)" % body.get("fallback"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cluster")
    parser.add_argument("--url", default="http://127.0.0.1:9817", help="lagwatch's base URL")
    parser.add_argument("--wait", type=float, default=30.0, help="long-poll wait in seconds")
    parser.add_argument("--max-lag", type=float, default=None, help="staleness bound in seconds")
    args = parser.parse_args(argv)

    def show(body):
        line = {"generation": body.get("generation"), "fallback": body.get("fallback"),
                "replicas": [(r["node"], r["weight"]) for r in body.get("replicas") or []]}
        print(json.dumps(line), flush=True)

    router = ReplicaRouter(args.url, args.cluster, wait=args.wait, max_lag=args.max_lag,
                           on_change=show).start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        router.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
