"""No secret reaches what lagwatch shows: one live run against the real PostgreSQL and MariaDB
fixtures with every kind of secret configured at once (database passwords from files and, wrong
ones, from the environment; a router's HMAC secret and tokened push URLs; Slack, PagerDuty and
webhook credentials; basic-auth hashes and the passwords clients send), every path that handles
them made to run (auth failures, pushes retried, refused and delivered, alerts firing and
resolving through retries and refusals, a reload, debug logging), with receivers whose refusals
quote the request line back, token and all, as many servers' error pages do (lagwatch logs a
refusal's answer, so it must redact the URL it sent from it), then every surface searched for
every secret: the log, /metrics, /api/v1/clusters, each replica list, the status page, the reload
answer, --check-config's output and the alert state file. Each surface must also show known
non-secret content (node names, the drivers' auth errors), so the search is known to look at the
real thing."""
import base64
import hashlib
import json
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.request
import warnings

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import LAGWATCH_BIN, free_port_block, wait_for
from processes import stop_process
from receiver import Receiver, verify

PG_CLUSTER, MY_CLUSTER = "orders", "accounts"
PG_BROKEN, MY_BROKEN = "pg-wrongpw", "my-wrongpw"   # one node each, wrong password via env
DEDUP_KEY = "lagwatch:%s:pg2:lag_critical" % PG_CLUSTER
# pg2 paused: lag passes 3 s, then `for` (1 s) and group_wait (1 s), on 500 ms cycles.
FIRE_TIMEOUT = 30
RESOLVE_TIMEOUT = 30
# lagwatch keeps the first 200 bytes of an answer for the log (src/http_client.cpp).
RESPONSE_KEPT = 200


def express_error_page(method, path):
    """Express's default error page (finalhandler), which quotes the request line."""
    return ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            "<title>Error</title>\n</head>\n<body>\n<pre>Cannot %s %s</pre>\n</body>\n</html>\n"
            % (method, path))


class EchoingReceiver(Receiver):
    """A receiver whose refusals are Express's error page: a URL whose path or query is the
    credential comes back in the body of the answer, which lagwatch logs when refused."""

    def _answer(self, handler, body):
        request, headers, reply, hang = super()._answer(handler, body)
        if request.status >= 400:
            reply = express_error_page(handler.command, handler.path)
        return request, headers, reply, hang


class Token(str):
    """A distinctive random string (a label, then 20 hex digits): found in a text only if it
    was copied there. `short` (the label and 6 digits) finds it cut off, too."""

    def __new__(cls, label):
        value = super().__new__(cls, label + secrets.token_hex(10))
        value.short = value[:len(label) + 6]
        return value


def bcrypt_hash(password):
    """A bcrypt hash (cost 4: fast) of `password`, made with Python's crypt (libxcrypt)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # deprecated since 3.11; there is no other bcrypt in Debian 12's Python
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2 ** 4))


class Secrets:
    """Every secret of the run, by what it is; each with the strings that must never show up.

    Where a value holds quotes, spaces or backslashes (the wrong database passwords: they test
    the conninfo quoting, where a mistake makes libpq echo a piece of the value), each piece
    between them is a random token of its own, so a piece found alone is found, and so is a
    value shown escaped (JSON, logfmt, HTML escape only the punctuation around the tokens)."""

    def __init__(self, pg, mysql, router, slack, pd, hook, dead_port):
        self.needles = {}   # what -> [strings]
        self.pg_password = self.add("PostgreSQL password (password_file)", read(pg.password_file))
        self.my_password = self.add("MariaDB password (password_file)", read(mysql.password_file))
        a, b, c = Token("pgwa"), Token("pgwb"), Token("pgwc")
        self.wrong_pg = self.add("wrong PostgreSQL password (password_env)",
                                 "%s '%s\\ %s" % (a, b, c), a, b, c)
        a, b, c = Token("mywa"), Token("mywb"), Token("mywc")
        self.wrong_my = self.add("wrong MariaDB password (password_env)",
                                 "%s '%s\\ %s" % (a, b, c), a, b, c)

        self.push_secret = self.add("router HMAC secret (secret_file)", Token("hmac"))
        path, tok = Token("rtpath"), Token("rttok")
        self.push_url = self.add("router push URL token", "http://127.0.0.1:%d/%s/lagwatch"
                                 "?token=%s" % (router.port, path, tok), path, tok)
        path, tok = Token("deadpath"), Token("deadtok")
        self.dead_url = self.add("unreachable router URL token", "http://127.0.0.1:%d/%s?token=%s"
                                 % (dead_port, path, tok), path, tok)

        t, b, s = Token("T"), Token("B"), Token("slk")
        self.slack_path = "/services/%s/%s/%s" % (t, b, s)
        self.slack_url = self.add("Slack webhook URL (url_file)",
                                  "http://127.0.0.1:%d%s" % (slack.port, self.slack_path), t, b, s)
        self.routing_key = self.add("PagerDuty routing key (routing_key_env)", Token("pdkey"))
        # Long enough that the echo of its path is cut off inside the token (see the test).
        a, b, tok = Token("hookpath"), Token("hookpath"), Token("hooktok")
        self.hook_path = "/hooks/%s/%s?token=%s" % (a, b, tok)
        self.hook_url = self.add("webhook URL token (url_file)",
                                 "http://127.0.0.1:%d%s" % (hook.port, self.hook_path), a, b, tok)

        self.admin_password = self.add("basic-auth password (bcrypt user)", Token("adminpw"))
        self.admin_hash = bcrypt_hash(self.admin_password)
        assert self.admin_hash.startswith("$2b$04$"), self.admin_hash
        # "$2b$04$" + 22 characters of salt + 31 of digest: the salt and the digest alone too.
        self.add("basic-auth bcrypt hash", self.admin_hash, self.admin_hash[7:29],
                 self.admin_hash[29:])
        self.scraper_password = self.add("basic-auth password (sha256 user)", Token("scrapepw"))
        self.scraper_hash = "sha256:" + hashlib.sha256(self.scraper_password.encode()).hexdigest()
        self.add("basic-auth sha256 hash", self.scraper_hash, self.scraper_hash[7:])
        self.rejected_password = self.add("a wrong basic-auth password a client tried",
                                          Token("badpw"))
        for what, user, password in (("admin", "admin", self.admin_password),
                                     ("prometheus", "prometheus", self.scraper_password),
                                     ("rejected", "admin", self.rejected_password)):
            header = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
            self.add("Authorization header (%s)" % what, header)

    def add(self, what, value, *pieces):
        self.needles[what] = [value, *pieces]
        return value

    def found_in(self, text, allowed=()):
        """[(what, needle, excerpt)] for every secret in `text`, except those named in `allowed`."""
        out = []
        for what, needles in self.needles.items():
            if what in allowed:
                continue
            for needle in needles + [n.short for n in needles if isinstance(n, Token)]:
                at = text.find(needle)
                if at >= 0:
                    out.append((what, needle, text[max(0, at - 150):at + len(needle) + 150]))
                    break
        return out


def read(path):
    with open(path) as f:
        value = f.read().strip()
    assert len(value) >= 16, "the fixture's password in %s is too short to search for" % path
    return value


def write_secret(path, value):
    """As operators write secret files: with `echo`, a trailing newline, mode 600."""
    path.write_text(value + "\n")
    os.chmod(path, 0o600)
    return path


class SecretLagwatch:
    """lagwatch with --log-level debug, secrets in its environment, and basic auth on its
    endpoints (conftest's Lagwatch has neither)."""

    def __init__(self, config_path, log_path, env):
        self.config = config_path
        self.port = int(config_path.read_text().split('listen = "127.0.0.1:')[1].split('"')[0])
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen([LAGWATCH_BIN, "--config", str(config_path),
                                      "--log-level", "debug"],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 15
        while time.time() < deadline:
            assert self.proc.poll() is None, "lagwatch exited:\n" + self.log_text()
            try:
                if self.request("/-/ready")[0] == 200:  # a probe: open without credentials
                    return
            except OSError:
                pass
            time.sleep(0.1)
        pytest.fail("lagwatch not ready within 15 s:\n" + self.log_text())

    def request(self, path, auth=None, method="GET", timeout=10):
        """(status, body) of one request, with basic credentials (user, password) if given."""
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), method=method)
        if auth is not None:
            req.add_header("Authorization", "Basic " + base64.b64encode(
                ("%s:%s" % auth).encode()).decode())
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text()

    def stop(self):
        status = stop_process(self.proc, grace_seconds=10)
        self.log.close()
        return status


@pytest.fixture
def started(tmp_path):
    """Receivers and lagwatch processes of the test, always stopped (lagwatch by its PID)."""
    things = []
    yield things
    for thing in reversed(things):
        thing.stop()


def config_text(lw_port, pg, mysql, keys, files, state_file, broken_threshold="3.0"):
    """The whole config: both fixtures, one wrong-password node per engine, a signed and a dead
    router, Slack, PagerDuty and a webhook for every alert, basic auth on every endpoint."""
    quick = "thresholds = { lag_seconds = [1.0, 3.0] }"
    broken = []
    for name, engine, node, dsn, env in (
            (PG_BROKEN, "postgres", "badpg", pg.dsn("pg1"), "LAGWATCH_TEST_WRONG_PG_PASSWORD"),
            (MY_BROKEN, "mysql", "baddb", mysql.dsn("db1"), "LAGWATCH_TEST_WRONG_MY_PASSWORD")):
        broken += ["[[cluster]]", 'name = "%s"' % name, 'engine = "%s"' % engine,
                   'interval = "500ms"', 'timeout = "400ms"',
                   "thresholds = { lag_seconds = [1.0, %s] }" % broken_threshold,
                   "[[cluster.node]]", 'name = "%s"' % node, 'dsn = "%s"' % dsn,
                   'password_env = "%s"' % env]
    fors = "\n".join('%s = "1s"' % c for c in ("lag_warning", "lag_critical", "node_down",
                                               "replica_not_applying", "no_primary",
                                               "no_routable_replica"))
    return """[server]
listen = "127.0.0.1:{port}"
[server.basic_auth]
users = {{ admin = "{admin}", prometheus = "{scraper}" }}

[routing]
max_lag_seconds = 2.0
rise = 3
fall = 1
keepalive = "1s"
[[routing.push]]
name = "edge"
url = "{push_url}"
secret_file = "{push_secret}"
[[routing.push]]
name = "gone"
url = "{dead_url}"
secret_file = "{push_secret}"

[alerting]
group_wait = "1s"
repeat_interval = "1h"
state_file = "{state_file}"
[alerting.for]
{fors}
[[alerting.receiver]]
name = "chat"
type = "slack"
url_file = "{slack_file}"
[[alerting.receiver]]
name = "oncall"
type = "pagerduty"
url = "{pd_url}"
routing_key_env = "LAGWATCH_TEST_PD_ROUTING_KEY"
[[alerting.receiver]]
name = "hook"
type = "webhook"
url_file = "{hook_file}"

""".format(port=lw_port, admin=keys.admin_hash, scraper=keys.scraper_hash,
           push_url=keys.push_url, dead_url=keys.dead_url, push_secret=files["push"],
           state_file=state_file, fors=fors, slack_file=files["slack"], pd_url=files["pd_url"],
           hook_file=files["hook"]) + \
        pg.toml(cluster=PG_CLUSTER, extra=quick) + mysql.toml(cluster=MY_CLUSTER, extra=quick) + \
        "\n".join(broken) + "\n"


def posts(rx):
    return [r for r in rx.requests() if r.method == "POST"]


def delivered(rx):
    return [r for r in posts(rx) if r.status < 300]


def pd_events(pd):
    return [(r.json["event_action"], r.json["dedup_key"]) for r in delivered(pd)]


def test_no_secret_reaches_log_metrics_api_or_status_page(pg, mysql, started, tmp_path):
    pg.run("wait-caught-up", pg.dir)
    router, slack, pd, hook = (EchoingReceiver() for _ in range(4))
    started.extend([router, slack, pd, hook])
    keys = Secrets(pg, mysql, router, slack, pd, hook, dead_port=free_port_block(1))
    router.secret = keys.push_secret.encode()  # the router verifies every signature
    # The webhook's refusal quotes its URL past the end of what lagwatch keeps of an answer:
    # the log may get the start of its token only, which must not reach the log either.
    echo = express_error_page("POST", keys.hook_path)
    token_at = echo.index("?token=") + len("?token=")
    assert token_at + len("hooktok") + 6 <= RESPONSE_KEPT < len(echo.split("</pre>")[0]), echo

    # Every failure path once, then they accept: the router retried (500) and refused (404);
    # Slack retried; PagerDuty's Retry-After; the webhook refused (404).
    router.respond(500, 404)
    slack.respond(500)
    pd.respond((429, {"Retry-After": "1"}))
    hook.respond(404)

    files = {"push": write_secret(tmp_path / "router.secret", keys.push_secret),
             "slack": write_secret(tmp_path / "slack.url", keys.slack_url),
             "hook": write_secret(tmp_path / "hook.url", keys.hook_url),
             "pd_url": pd.url}
    env = dict(os.environ, LAGWATCH_TEST_WRONG_PG_PASSWORD=keys.wrong_pg,
               LAGWATCH_TEST_WRONG_MY_PASSWORD=keys.wrong_my,
               LAGWATCH_TEST_PD_ROUTING_KEY=keys.routing_key)
    state_file = tmp_path / "alerts.json"
    port = free_port_block(1)
    config = tmp_path / "lagwatch.toml"
    config.write_text(config_text(port, pg, mysql, keys, files, state_file))
    check = subprocess.run([LAGWATCH_BIN, "--check-config", str(config)], capture_output=True,
                           text=True, timeout=30, env=env)
    assert check.returncode == 0, check.stdout + check.stderr

    lw = SecretLagwatch(config, tmp_path / "lagwatch.log", env)
    started.append(lw)
    admin = ("admin", keys.admin_password)
    scraper = ("prometheus", keys.scraper_password)

    # Basic auth: nothing without credentials or with a wrong password; in with the right ones.
    assert lw.request("/api/v1/clusters")[0] == 401
    assert lw.request("/api/v1/clusters", ("admin", keys.rejected_password))[0] == 401
    assert lw.request("/metrics", ("admin", keys.scraper_password))[0] == 401
    assert lw.request("/metrics", scraper)[0] == 200

    def clusters():
        status, body = lw.request("/api/v1/clusters", admin)
        assert status == 200, body
        return {c["cluster"]: {n["name"]: n for n in c["nodes"]}
                for c in json.loads(body)["clusters"]}

    def auth_errors():
        c = clusters()
        errors = [c[PG_BROKEN]["badpg"].get("error", {}), c[MY_BROKEN]["baddb"].get("error", {})]
        return errors if all(e.get("reason") == "auth" for e in errors) else None

    def auth_failures():
        """lagwatch_collection_errors_total{reason="auth"} of the two wrong-password nodes."""
        status, body = lw.request("/metrics", scraper)
        assert status == 200, body
        found = {s.labels["node"]: s.value for family in text_string_to_metric_families(body)
                 for s in family.samples if s.name == "lagwatch_collection_errors_total"
                 and s.labels.get("reason") == "auth"}
        return found.get("badpg", 0), found.get("baddb", 0)

    # Both drivers' authentication errors, from the wrong passwords in the environment.
    pg_error, my_error = wait_for("both wrong passwords refused by the servers", auth_errors, 20)
    assert "password authentication failed" in pg_error["message"], pg_error
    assert "Access denied" in my_error["message"], my_error
    wait_for("every fixture node up", lambda: all(
        n["up"] for cl in (PG_CLUSTER, MY_CLUSTER) for n in clusters()[cl].values()), 20)
    # Pushes: a retry, a refusal, then signed lists the router verifies.
    wait_for("a verified push after a retry and a refusal", lambda: [
        p.status for p in router.requests()][:3] == [500, 404, 202], 15)
    push = delivered(router)[0]
    assert verify(keys.push_secret.encode(), push.headers, push.body) is None

    pg.scenario("pg2", "pause")
    try:
        wait_for("the PagerDuty trigger for pg2", lambda: ("trigger", DEDUP_KEY) in pd_events(pd),
                 FIRE_TIMEOUT)
        wait_for("a Slack message about pg2", lambda: any(
            "lag_critical on pg2" in r.body.decode() for r in delivered(slack)), 10)
        wait_for("a webhook delivered after a refusal", lambda: [
            r.status for r in posts(hook)][:1] == [404] and delivered(hook), 10)
        # Reload once, with a change: the wrong-password clusters are rebuilt, so their
        # passwords are read from the environment again and refused again.
        config.write_text(config_text(port, pg, mysql, keys, files, state_file,
                                      broken_threshold="4.0"))
        reload_status, reload_body = lw.request("/-/reload", admin, method="POST")
        assert reload_status == 200, reload_body
    finally:
        pg.scenario("pg2", "resume")
    wait_for("the PagerDuty resolve for pg2", lambda: ("resolve", DEDUP_KEY) in pd_events(pd),
             RESOLVE_TIMEOUT)
    refused = auth_failures()
    wait_for("the wrong passwords refused again after the reload", lambda: all(
        now > before for now, before in zip(auth_failures(), refused)), 10)
    wait_for("pg2 back in the list", lambda: "pg2" in [
        r["node"] for r in json.loads(lw.request("/api/v1/clusters/%s/replicas" % PG_CLUSTER,
                                                 admin)[1])["replicas"]], 15)

    # Every surface, read after all of that.
    surfaces = {}

    def read_surface(name, path, auth):
        status, body = lw.request(path, auth)
        assert status == 200, "%s: %d %s" % (path, status, body)
        surfaces[name] = body

    read_surface("/metrics", "/metrics", scraper)
    read_surface("/api/v1/clusters", "/api/v1/clusters", admin)
    for cluster in (PG_CLUSTER, MY_CLUSTER, PG_BROKEN, MY_BROKEN):
        path = "/api/v1/clusters/%s/replicas" % cluster
        read_surface(path, path, admin)
    read_surface("status page /", "/", admin)
    surfaces["POST /-/reload answer"] = reload_body
    surfaces["--check-config output"] = check.stdout + check.stderr
    assert lw.stop() == 0, lw.log_text()
    surfaces["log"] = lw.log_text()
    surfaces["alert state file"] = state_file.read_text()

    # The search looks at real content: each surface shows what it is known to show.
    expected = {
        "log": ["node=badpg", "node=baddb", "password authentication failed", "Access denied",
                "Cannot POST <redacted>",  # a refusal's answer, with the URL taken out
                "router push delivered",  # a debug line: --log-level debug took effect
                'router="gone"', "router refused the push", "notification delivered",
                "notification failed; retrying", "receiver refused the notification",
                "alert firing", "alert resolved", "config reloaded"],
        "/metrics": ['node="pg2"', 'node="db2"', 'node="badpg"', 'node="baddb"',
                     'reason="auth"', 'router="edge"', 'receiver="oncall"'],
        "/api/v1/clusters": ['"pg2"', '"db2"', '"badpg"', '"baddb"',
                             "password authentication failed", "Access denied"],
        "/api/v1/clusters/%s/replicas" % PG_CLUSTER: ['"pg1"', '"pg2"', '"pg3"'],
        "/api/v1/clusters/%s/replicas" % MY_CLUSTER: ['"db1"', '"db2"', '"db3"'],
        "/api/v1/clusters/%s/replicas" % PG_BROKEN: ['"%s"' % PG_BROKEN],
        "/api/v1/clusters/%s/replicas" % MY_BROKEN: ['"%s"' % MY_BROKEN],
        "status page /": ["pg2", "db2", "badpg", "baddb", "password authentication failed",
                          "Access denied"],
        "POST /-/reload answer": ["config reloaded"],
        "--check-config output": [str(config), "ok ("],
        "alert state file": ["lagwatch:%s:badpg:node_down" % PG_BROKEN],
    }
    missing = ["%s lacks %r" % (where, s) for where, wanted in expected.items()
               for s in wanted if s not in surfaces[where]]
    assert not missing, "\n".join(missing) + "\n\nlog:\n" + surfaces["log"][-5000:]

    leaks = ["%s in %s (%r):\n    ...%s..." % (what, where, needle, excerpt)
             for where, text in surfaces.items()
             for what, needle, excerpt in keys.found_in(text)]

    # What lagwatch sent out carries only the secret meant for that receiver: no database
    # password in an alert about a failing node, no HMAC secret in a push.
    sent = {"pushes to the router": (router, ()), "Slack messages": (slack, ()),
            "PagerDuty events": (pd, ("PagerDuty routing key (routing_key_env)",)),
            "webhook posts": (hook, ())}
    for where, (rx, allowed) in sent.items():
        requests = rx.requests()
        assert requests, "nothing was sent as %s" % where
        for r in requests:
            text = str(r.headers) + r.body.decode()
            leaks += ["%s in %s (%r):\n    ...%s..." % (what, where, needle, excerpt)
                      for what, needle, excerpt in keys.found_in(text, allowed)]
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks)
