"""Router pushes against real PostgreSQL standbys and real HTTP receivers: signing, pushes on
change and keepalive, retries and backoff, Retry-After, isolation of dead and hung routers,
latest-wins while a router is down, and secrets kept out of the log."""
import datetime
import secrets
import subprocess
import time

import pytest

from conftest import free_port_block, wait_for
from receiver import Receiver, verify

INTERVAL = 0.5  # pg.toml()'s collection interval
# The backoff contract (src/push.h): the n-th retry waits at most 250 ms * 2^(n-1), 30 s cap.
BACKOFF_CAP = 30.0
SLACK = 0.3  # scheduling and HTTP round trip on a busy test machine


@pytest.fixture
def receivers():
    started = []

    def make(**kwargs):
        r = Receiver(**kwargs)
        started.append(r)
        return r

    yield make
    for r in started:
        r.stop()


@pytest.fixture
def secret(tmp_path):
    """(bytes, path): a router secret and its file, written with a newline as `echo` would."""
    value = "rs-" + secrets.token_hex(16)
    path = tmp_path / "router.secret"
    path.write_text(value + "\n")
    return value.encode(), path


def config(pg, *targets, keepalive="1m"):
    """pg.toml() with a [routing] table pushing to `targets`: dicts of [[routing.push]] keys."""
    lines = ["[routing]", "max_lag_seconds = 2.0", "rise = 3", "fall = 1", "min_serving = 1",
             'keepalive = "%s"' % keepalive]
    for t in targets:
        lines.append("[[routing.push]]")
        lines += ['%s = "%s"' % (k, v) for k, v in t.items()]
    return "\n".join(lines) + "\n" + pg.toml()


@pytest.fixture
def caught_up(pg):
    pg.run("wait-caught-up", pg.dir)
    return pg


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def delay(push):
    """Seconds from lagwatch producing the pushed generation to the push arriving."""
    return push.arrived - parse_time(push.json["generated_at"])


def nodes(push):
    return [r["node"] for r in push.json["replicas"]]


def first_push(receiver, what="the first push", timeout=10):
    return wait_for(what, lambda: receiver.pushes() and receiver.pushes()[0], timeout)


def push_after(receiver, generation, what, timeout=10):
    """The first push with a generation above `generation`."""
    def newer():
        return next((p for p in receiver.pushes() if p.generation > generation), None)
    return wait_for(what, newer, timeout)


def counts(lw, router):
    return {r: lw.value("lagwatch_router_pushes_total", router=router, result=r)
            for r in ("success", "retry", "failure")}


def gaps(requests):
    return [round(b.arrived - a.arrived, 3) for a, b in zip(requests, requests[1:])]


def test_first_push_is_signed_and_is_the_api_list(caught_up, lagwatch_factory, receivers, secret):
    key, path = secret
    signed, unsigned = receivers(secret=key), receivers()
    lw = lagwatch_factory(config(caught_up, {"name": "edge", "url": signed.url,
                                             "secret_file": path},
                                 {"name": "plain", "url": unsigned.url}))
    push = first_push(signed)
    assert push.method == "POST" and push.path == "/lagwatch"
    assert push.status == 202, "the receiver refused the signature: %r" % push
    assert verify(key, push.headers, push.body) is None
    assert verify(b"another secret", push.headers, push.body) == "signature does not match"
    assert push.headers["Content-Type"] == "application/json"
    assert push.headers["X-Lagwatch-Cluster"] == "orders"
    assert abs(int(push.headers["X-Lagwatch-Timestamp"]) - push.arrived) <= 2
    body = push.json
    assert push.headers["X-Lagwatch-Generation"] == str(body["generation"])

    # The same body as GET .../replicas (figures move between the two reads; the list doesn't).
    _, api = lw.replicas()
    assert set(body) == set(api)
    assert (body["cluster"], body["generation"], body["primary"]["node"], nodes(push)) == (
        api["cluster"], api["generation"], api["primary"]["node"], [r["node"] for r in api["replicas"]])
    assert set(body["replicas"][0]) == set(api["replicas"][0])

    plain = first_push(unsigned, "the first unsigned push")
    assert plain.status == 202
    assert "X-Lagwatch-Signature" not in plain.headers and "X-Lagwatch-Timestamp" in plain.headers

    wait_for("success counted", lambda: (counts(lw, "edge")["success"] or 0) >= 1, 5)
    assert counts(lw, "edge")["retry"] == 0 and counts(lw, "edge")["failure"] == 0
    scrape = lw.scrape()
    r = subprocess.run(["promtool", "check", "metrics"], input=scrape, capture_output=True,
                       text=True)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", (r.stdout, r.stderr)
    assert 'lagwatch_router_pushes_total{result="success",router="plain"}' in scrape or \
        'lagwatch_router_pushes_total{router="plain",result="success"}' in scrape, scrape
    assert signed.url not in scrape and "127.0.0.1:%d" % signed.port not in scrape


def test_list_change_is_pushed_within_one_interval(caught_up, lagwatch_factory, receivers):
    pg = caught_up
    rx = receivers()
    lagwatch_factory(config(pg, {"name": "edge", "url": rx.url}))
    start = wait_for("both standbys pushed", lambda: next(
        (p for p in rx.pushes() if nodes(p) == ["pg2", "pg3"]), None), 10)
    pg.scenario("pg2", "pause")
    try:
        removed = push_after(rx, start.generation, "a push without pg2", timeout=10)
        assert nodes(removed) == ["pg3"], removed.json
        assert delay(removed) <= INTERVAL, "pushed %.3f s after the change" % delay(removed)
    finally:
        pg.scenario("pg2", "resume")
    back = push_after(rx, removed.generation, "a push with pg2 back", timeout=15)
    assert nodes(back) == ["pg2", "pg3"], back.json
    assert delay(back) <= INTERVAL, "pushed %.3f s after the change" % delay(back)
    # Only changes were pushed (keepalive is 1m): one push per generation, in order.
    generations = [p.generation for p in rx.pushes()]
    assert generations == sorted(set(generations)), generations


def test_keepalive_resends_the_latest_list_on_one_connection(caught_up, lagwatch_factory,
                                                              receivers, secret):
    key, path = secret
    rx = receivers(secret=key)
    lagwatch_factory(config(caught_up, {"name": "edge", "url": rx.url, "secret_file": path,
                                        "keepalive": "2s"}))
    pushes = wait_for("three pushes", lambda: len(rx.pushes()) >= 3 and rx.pushes(), 10)
    assert all(p.status == 202 for p in pushes), pushes
    same = [(a, b) for a, b in zip(pushes, pushes[1:]) if a.generation == b.generation]
    assert same, "the list changed on every push: %r" % pushes
    for a, b in same:
        # The keepalive counts from the previous delivery, which ends after it arrives here.
        assert 2.0 <= b.arrived - a.arrived <= 2.0 + SLACK, gaps(pushes)
        assert b.json["generated_at"] == a.json["generated_at"]
        assert int(b.headers["X-Lagwatch-Timestamp"]) >= int(a.headers["X-Lagwatch-Timestamp"])
    # One libcurl handle per router keeps its connection alive between pushes.
    assert len({p.client_port for p in pushes}) == 1, [p.client_port for p in pushes]


def test_server_errors_are_retried_with_backoff_then_delivered(caught_up, lagwatch_factory,
                                                               receivers):
    rx = receivers()
    rx.respond(500, 500, 500, 202)
    lw = lagwatch_factory(config(caught_up, {"name": "edge", "url": rx.url}))
    requests = wait_for("four attempts", lambda: len(rx.pushes()) >= 4 and rx.pushes()[:4], 10)
    assert [r.status for r in requests] == [500, 500, 500, 202]
    for n, gap in enumerate(gaps(requests), start=1):
        assert gap <= 0.25 * 2 ** (n - 1) + SLACK, "retry %d after %.3f s: %r" % (n, gap, gaps(requests))
    wait_for("counted", lambda: counts(lw, "edge")["success"] >= 1 and counts(lw, "edge"), 5)
    c = counts(lw, "edge")
    assert c["retry"] >= 3 and c["failure"] == 0, c


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(caught_up, lagwatch_factory, receivers, status):
    rx = receivers()
    rx.respond((status, {"Retry-After": "2"}), 202)
    lw = lagwatch_factory(config(caught_up, {"name": "edge", "url": rx.url}))
    first, second = wait_for("a retry", lambda: len(rx.pushes()) >= 2 and rx.pushes()[:2], 10)
    assert (first.status, second.status) == (status, 202)
    assert 2.0 <= second.arrived - first.arrived <= 2.0 + SLACK, gaps([first, second])
    assert counts(lw, "edge")["retry"] == 1


def test_refused_push_waits_for_the_keepalive(caught_up, lagwatch_factory, receivers):
    rx = receivers()
    rx.respond(400, 202)
    lw = lagwatch_factory(config(caught_up, {"name": "edge", "url": rx.url, "keepalive": "2s"}))
    first, second = wait_for("the keepalive", lambda: len(rx.pushes()) >= 2 and rx.pushes()[:2], 10)
    assert (first.status, second.status) == (400, 202)
    if first.generation == second.generation:  # not a change: the keepalive, not a retry
        assert second.arrived - first.arrived >= 2.0, gaps([first, second])
    c = counts(lw, "edge")
    assert c["failure"] == 1 and c["retry"] == 0, c


def test_dead_and_hung_routers_do_not_delay_a_healthy_one(caught_up, lagwatch_factory, receivers):
    pg = caught_up
    hung, healthy = receivers(), receivers()
    hung.hang(60)
    dead_url = "http://127.0.0.1:%d/lagwatch" % free_port_block(1)
    # The broken routers come first and the hung one may take 30 s per attempt: a pusher that
    # sent to routers in turn would be late for the healthy one by that much.
    lw = lagwatch_factory(config(pg, {"name": "dead", "url": dead_url},
                                 {"name": "hung", "url": hung.url, "timeout": "30s"},
                                 {"name": "healthy", "url": healthy.url}))
    start = wait_for("both standbys pushed", lambda: next(
        (p for p in healthy.pushes() if nodes(p) == ["pg2", "pg3"]), None), 10)
    wait_for("the hung router holding a push", lambda: hung.pushes(), 5)
    pg.scenario("pg2", "pause")
    try:
        removed = push_after(healthy, start.generation, "a push without pg2", timeout=10)
        assert nodes(removed) == ["pg3"] and delay(removed) <= INTERVAL, (delay(removed), removed.json)
    finally:
        pg.scenario("pg2", "resume")
    back = push_after(healthy, removed.generation, "a push with pg2 back", timeout=15)
    assert nodes(back) == ["pg2", "pg3"] and delay(back) <= INTERVAL, (delay(back), back.json)
    assert all(p.status == 202 for p in healthy.pushes())
    assert counts(lw, "dead")["retry"] >= 1 and counts(lw, "dead")["success"] == 0
    assert counts(lw, "hung")["success"] == 0

    # Stopping aborts the hung transfer instead of waiting out its 30 s timeout.
    began = time.time()
    lw.stop()
    took = time.time() - began
    assert lw.proc.returncode == 0 and took < 3.0, (lw.proc.returncode, took)


def test_router_down_during_changes_gets_the_latest_list_not_a_backlog(
        caught_up, lagwatch_factory, receivers):
    pg = caught_up
    rx = receivers()
    lw = lagwatch_factory(config(pg, {"name": "edge", "url": rx.url}))
    wait_for("both standbys pushed", lambda: any(nodes(p) == ["pg2", "pg3"] for p in rx.pushes()), 10)
    rx.stop()

    def api_list():
        _, body = lw.replicas()
        return body["generation"], [r["node"] for r in body["replicas"]]

    missed = []  # generations produced while the router was down
    try:
        pg.scenario("pg2", "pause")
        missed.append(wait_for("pg2 removed", lambda: (lambda g, n: n == ["pg3"] and g)(*api_list()), 10))
        pg.scenario("pg2", "resume")
        missed.append(wait_for("pg2 back", lambda: (lambda g, n: n == ["pg2", "pg3"] and g)(*api_list()), 15))
        pg.scenario("pg3", "pause")
        missed.append(wait_for("pg3 removed", lambda: (lambda g, n: n == ["pg2"] and g)(*api_list()), 10))
    finally:
        pg.scenario("pg2", "resume")
        pg.scenario("pg3", "resume")
    assert len(set(missed)) == 3, missed

    rx.clear()
    back_at = time.time()
    rx.start()
    # The next attempt comes within one backoff ceiling (30 s at most).
    first = first_push(rx, "a push after the router came back", timeout=BACKOFF_CAP + 2)
    assert first.arrived - back_at <= BACKOFF_CAP + SLACK
    assert first.generation >= missed[-1], (first.generation, missed)
    # Pushes that follow are newer lists (pg3 rising back), never the ones missed before.
    time.sleep(2 * INTERVAL)
    later = [p.generation for p in rx.pushes()]
    assert later == sorted(later) and not set(later) & set(missed[:-1]), (later, missed)
    assert counts(lw, "edge")["retry"] >= 1


def test_secrets_and_urls_stay_out_of_log_and_metrics(caught_up, lagwatch_factory, receivers,
                                                      secret):
    key, path = secret
    token = "tok-" + secrets.token_hex(8)
    rx = receivers()
    rx.respond(500, 400, 202)  # a retry, a refusal and a delivery: every log line
    url = rx.url + "?token=" + token
    lw = lagwatch_factory(config(caught_up, {"name": "edge", "url": url, "secret_file": path,
                                             "keepalive": "2s"}))
    wait_for("a delivery after a retry and a refusal",
             lambda: [p.status for p in rx.pushes()][:3] == [500, 400, 202], 10)
    assert rx.pushes()[0].path == "/lagwatch?token=" + token
    log = lw.log_text()
    assert 'router="edge"' in log, log
    scrape = lw.scrape()
    for text in (key.decode(), token, url, "/lagwatch"):
        assert text not in log, "%r in the log:\n%s" % (text, log)
        assert text not in scrape, "%r in /metrics" % text
