"""The status page (GET /) in a real browser: headless Chromium (Debian's `chromium`) against
lagwatch watching the real PostgreSQL and MariaDB fixtures. Every node is shown with its role,
state, lag, routability and last error, with and without scripts; a paused standby turns
critical in place and recovers; the page loads nothing from elsewhere, escapes what it shows,
and never shows a secret. Screenshots land in build/ (status-page.png, status-page-phone.png).
"""
import base64
import hashlib
import html.parser
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
import urllib.request

import pytest

from conftest import ROOT, wait_for

PG_CLUSTER, MY_CLUSTER = "pg-orders", "my-orders"
BUILD_DIR = os.path.join(ROOT, os.environ.get("LAGWATCH_BUILD_DIR", "build"))
# Quick states for the test: critical at 2 s of lag, out of the replica list past 2 s.
THRESHOLDS = "thresholds = { lag_seconds = [1.0, 2.0] }"
ROUTING = "[routing]\nmax_lag_seconds = 2.0\nrise = 3\nfall = 1\n"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--hide-scrollbars", "--mute-audio"]


def chromium(tmp_path, *args, timeout=60):
    """Runs headless Chromium with a fresh profile; returns its stdout. Chromium and its
    helper processes (one process group) are killed by group id when it is done."""
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("chromium is missing: apt-get install chromium (scripts/setup installs it)")
    profile = tmp_path / ("chromium-%s" % secrets.token_hex(4))
    profile.mkdir()
    env = dict(os.environ, HOME=str(profile), XDG_CONFIG_HOME=str(profile / "config"),
               XDG_CACHE_HOME=str(profile / "cache"))
    proc = subprocess.Popen([exe, *CHROMIUM_FLAGS, "--user-data-dir=%s" % profile, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail("chromium %s did not finish within %d s:\n%s" % (args, timeout, err[-3000:]))
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if proc.returncode != 0:
        pytest.fail("chromium %s exited with %d:\n%s" % (args, proc.returncode, err[-3000:]))
    return out


def dom(tmp_path, url, refreshed=True):
    """The page's DOM as Chromium built it: refreshed, after the inline script has re-fetched
    it in place (5 s of virtual time); else right after load, the server-rendered content
    alone. (--dump-dom serialises through script, so it cannot run with scripts disabled.)"""
    args = ["--virtual-time-budget=5000"] if refreshed else []
    return Page(chromium(tmp_path, *args, "--dump-dom", url))


def screenshot(tmp_path, url, path, width, height):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        os.remove(path)
    chromium(tmp_path, "--screenshot=%s" % path, "--window-size=%d,%d" % (width, height), url)
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "%s is not a PNG" % path
    assert (int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")) == (width, height)


class Page(html.parser.HTMLParser):
    """What a reader sees: clusters, node rows with their cells, all text, and any element
    found inside a cell that the page never renders there (a sign of unescaped text)."""

    CELL_MARKUP = {"div", "span", "b", "br"}

    def __init__(self, markup):
        super().__init__(convert_charrefs=True)
        self.markup = markup
        self.body = {}
        self.sections = {}   # cluster -> data-state
        self.rows = {}       # (cluster, node) -> {attributes..., "cells": {label: text}}
        self.unexpected = []  # (cluster, node, label, tag)
        self.texts = []
        self.fleets = 0
        self._cluster = self._row = self._cell = None
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if a.get("id") == "fleet":
            self.fleets += 1
        if tag == "section" and "data-cluster" in a:
            self._cluster = a["data-cluster"]
            self.sections[self._cluster] = a["data-state"]
        elif tag == "tr" and "data-node" in a:
            self._row = dict(a, cells={})
            self.rows[(self._cluster, a["data-node"])] = self._row
        elif tag == "td" and self._row is not None:
            self._cell = a["data-label"]
            self._row["cells"][self._cell] = ""
        elif self._cell is not None and tag not in self.CELL_MARKUP:
            self.unexpected.append((self._cluster, self._row["data-node"], self._cell, tag))

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        self.texts.append(data)
        if self._cell is not None:
            self._row["cells"][self._cell] += data

    @property
    def text(self):
        return "".join(self.texts)

    def row(self, cluster, node):
        assert (cluster, node) in self.rows, "no row for %s/%s; rows: %s" % (
            cluster, node, sorted(self.rows))
        return self.rows[(cluster, node)]

    def states(self):
        return {k: r["data-state"] for k, r in self.rows.items()}


def node_states(lw):
    return {(c["cluster"], n["name"]): n["state"] for c in lw.clusters() for n in c["nodes"]}


def listed(lw, cluster):
    return [r["node"] for r in lw.replicas(cluster)[1]["replicas"]]


def secrets_of(*servers):
    out = []
    for s in servers:
        with open(s.password_file) as f:
            out.append(f.read().strip())
    assert all(len(p) >= 8 for p in out), "fixture passwords too short to search for"
    return out


@pytest.fixture
def fleet(pg, mysql, lagwatch_factory):
    """lagwatch watching both fixtures, every replica ok and listed."""
    pg.run("wait-caught-up", pg.dir)
    lw = lagwatch_factory(ROUTING + pg.toml(cluster=PG_CLUSTER, extra=THRESHOLDS)
                          + mysql.toml(cluster=MY_CLUSTER, extra=THRESHOLDS))
    want = {(PG_CLUSTER, n): "ok" for n in pg.nodes} | {(MY_CLUSTER, n): "ok" for n in mysql.nodes}
    wait_for("every node ok", lambda: node_states(lw) == want, 20)
    wait_for("every replica listed", lambda: listed(lw, PG_CLUSTER) == ["pg2", "pg3"]
             and listed(lw, MY_CLUSTER) == ["db2", "db3"], 20)
    return lw


def url(lw):
    return "http://127.0.0.1:%d/" % lw.port


def check_healthy_fleet(page, pg, mysql):
    assert page.sections == {PG_CLUSTER: "ok", MY_CLUSTER: "ok"}, page.sections
    assert set(page.rows) == {(PG_CLUSTER, n) for n in pg.nodes} | {(MY_CLUSTER, n) for n in mysql.nodes}
    for cluster, primary, replicas in ((PG_CLUSTER, "pg1", ["pg2", "pg3"]),
                                       (MY_CLUSTER, "db1", ["db2", "db3"])):
        p = page.row(cluster, primary)
        assert (p["data-role"], p["data-state"], p["cells"]["role"], p["cells"]["state"]) == \
            ("primary", "ok", "primary", "ok"), p
        for node in replicas:
            r = page.row(cluster, node)
            c = r["cells"]
            assert (r["data-role"], r["data-state"], r["data-routable"]) == ("replica", "ok", "yes"), r
            assert (c["role"], c["state"], c["routable"], c["connected"], c["applying"]) == \
                ("replica", "ok", "yes", "yes", "yes"), r
            # "≥" while the position timeline is younger than the replica's position (start-up).
            assert re.fullmatch(r"(≥ )?\d+\.\d{3} s", c["lag"]), r
            assert re.fullmatch(r"\d+ B|\d+\.\d (KiB|MiB|GiB)", c["lag bytes"]), r
            assert c["last error"] == "", r


def test_page_shows_every_node_role_state_and_lag_server_rendered(fleet, pg, mysql, tmp_path):
    status, headers, body = fleet.request("/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8", headers
    check_healthy_fleet(Page(body), pg, mysql)  # what a browser without scripts shows
    page = dom(tmp_path, url(fleet), refreshed=False)
    assert page.body.get("data-refreshes") is None  # the script has not touched it yet
    check_healthy_fleet(page, pg, mysql)
    for secret in secrets_of(pg, mysql):
        assert secret not in body and secret not in page.markup, "a password is on the page"


def test_page_refreshes_itself_in_place(fleet, pg, mysql, tmp_path):
    page = dom(tmp_path, url(fleet), refreshed=True)
    assert int(page.body.get("data-refreshes", "0")) >= 1, "the inline script did not refresh: %s" % page.body
    assert page.fleets == 1
    check_healthy_fleet(page, pg, mysql)


def test_paused_standby_turns_critical_and_recovers(fleet, pg, mysql, tmp_path):
    pg.scenario("pg2", "pause")
    try:
        wait_for("pg2 critical and out of the list",
                 lambda: node_states(fleet)[(PG_CLUSTER, "pg2")] == "critical"
                 and listed(fleet, PG_CLUSTER) == ["pg3"], 20)
        page = dom(tmp_path, url(fleet), refreshed=True)
        r = page.row(PG_CLUSTER, "pg2")
        c = r["cells"]
        assert (r["data-state"], c["state"], c["applying"], c["connected"], c["routable"]) == \
            ("critical", "critical", "no", "yes", "no"), r
        lag = float(re.match(r"[\u2265 ]*([\d.]+) s", c["lag"]).group(1))
        assert lag > 2.0, r
        assert page.sections[PG_CLUSTER] == "critical", page.sections
        assert page.row(PG_CLUSTER, "pg3")["data-state"] == "ok"
        assert page.sections[MY_CLUSTER] == "ok"
        # The picture for the README (docs/img/status-page.png is a copy): one critical row.
        screenshot(tmp_path, url(fleet), os.path.join(BUILD_DIR, "status-page.png"), 1200, 720)
        screenshot(tmp_path, url(fleet), os.path.join(BUILD_DIR, "status-page-phone.png"), 390, 844)
    finally:
        pg.scenario("pg2", "resume")
    wait_for("pg2 ok and listed again", lambda: node_states(fleet)[(PG_CLUSTER, "pg2")] == "ok"
             and listed(fleet, PG_CLUSTER) == ["pg2", "pg3"], 30)
    check_healthy_fleet(dom(tmp_path, url(fleet), refreshed=False), pg, mysql)


def test_page_loads_nothing_from_elsewhere(fleet):
    _, body = fleet.get("/")
    # Every URL the page names is relative to lagwatch or data:.
    for attr, value in re.findall(r'\b(src|href|action|poster|srcset)\s*=\s*"([^"]*)"', body):
        assert attr == "href" and not re.match(r"[a-z]+:", value) or value.startswith("data:"), \
            "%s=%r" % (attr, value)
    assert not re.search(r"@import|url\(|<link[^>]+stylesheet|<script[^>]+src|<iframe|<img", body, re.I)
    # The Content-Security-Policy allows the page's own inline style and script, by hash.
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', body).group(1)
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp, csp
    for tag in ("style", "script"):
        inline = re.findall(r"<%s>(.*?)</%s>" % (tag, tag), body, re.S)
        assert len(inline) == 1, tag
        digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
        assert "%s-src 'sha256-%s'" % (tag, digest) in csp, (tag, csp)
    # Readable on a phone; refreshes without scripts too.
    assert '<meta name="viewport" content="width=device-width,initial-scale=1">' in body
    assert "@media (max-width:" in body
    assert '<noscript><meta http-equiv="refresh"' in body


def test_error_text_is_escaped_and_secrets_never_shown(pg, lagwatch_factory, tmp_path):
    """A database name with markup in it comes back in the driver's error message; a wrong
    password fails authentication. The page shows both errors as text and no password."""
    wrong = "wrong-" + secrets.token_hex(12)
    wrong_file = tmp_path / "wrong.password"
    wrong_file.write_text(wrong + "\n")
    markup = "<script>alert(1)</script>"
    port = pg.port("pg1")
    config = pg.toml(cluster=PG_CLUSTER) + "\n".join([
        "[[cluster]]", 'name = "broken"', 'engine = "postgres"',
        "[[cluster.node]]", 'name = "badname"',
        'dsn = "postgresql://lagwatch@127.0.0.1:%d/%s?sslmode=disable"' % (port, markup),
        'password_file = "%s"' % pg.password_file,
        "[[cluster.node]]", 'name = "badpass"',
        'dsn = "postgresql://lagwatch@127.0.0.1:%d/postgres?sslmode=disable"' % port,
        'password_file = "%s"' % wrong_file]) + "\n"
    lw = lagwatch_factory(config)

    def errors():
        nodes = {n["name"]: n for c in lw.clusters() if c["cluster"] == "broken" for n in c["nodes"]}
        return nodes if all("error" in nodes.get(n, {}) for n in ("badname", "badpass")) else None
    seen = wait_for("both broken nodes failing", errors, 20)
    assert seen["badpass"]["error"]["reason"] == "auth", seen
    assert markup in seen["badname"]["error"]["message"], seen

    _, body = lw.get("/")
    assert markup not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    page = dom(tmp_path, url(lw), refreshed=True)
    bad = page.row("broken", "badname")["cells"]["last error"]
    assert markup in bad, bad  # shown as text ...
    assert page.unexpected == [], page.unexpected  # ... not as an element
    assert page.row("broken", "badpass")["cells"]["last error"].startswith("auth: "), page.rows
    assert page.sections["broken"] == "critical"  # no primary
    for secret in secrets_of(pg) + [wrong]:
        assert secret not in body and secret not in page.text, "a password is on the page"
