"""Hostile HTTP against the real lagwatch binary: a thousand idle and trickling connections,
oversized and malformed requests, path traversal on the status page. Through all of it the
server stays up and /metrics keeps answering. (tests/unit/http_server_test.cpp pins each
limit of the server itself; these run the shipped binary, its defaults and its fd limit.)"""
import os
import resource
import socket
import time

from conftest import wait_for

IDLE = 900          # connections that connect and send nothing
TRICKLING = 100     # slowloris: a request header a line at a time, never finished


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def exchange(port, data, timeout=5):
    """Sends `data` on a fresh connection and returns all it gets until the server closes it
    (or `timeout` passes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def status_of(answer):
    first = answer.split(b"\r\n", 1)[0].split()
    return int(first[1]) if len(first) >= 2 and first[1].isdigit() else None


def timed_scrape(lw):
    started = time.time()
    status, body = lw.get("/metrics", timeout=5)
    return status, body, time.time() - started


def test_a_thousand_idle_and_trickling_connections_leave_metrics_answering(pg, lagwatch_factory):
    # Start lagwatch with the soft limit systemd gives a service (1024 open files): it must
    # raise its own, or the connections below exhaust it and accept() fails.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    hard = max(hard, 8192)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        lw = lagwatch_factory(pg.toml())
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4096), hard))
    wait_for("a first sample", lambda: lw.get("/metrics")[0] == 200
             and "lagwatch_replica_lag_seconds" in lw.get("/metrics")[1], 10)
    # The fewest fds over half a second: a scrape's connection closing, a database connection
    # being replaced, are not lagwatch's baseline.
    baseline = min(open_fds(lw.proc.pid) for _ in range(5) if time.sleep(0.1) is None)

    clients = []
    try:
        for i in range(IDLE + TRICKLING):
            s = socket.create_connection(("127.0.0.1", lw.port), timeout=5)
            if i >= IDLE:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: lagwatch\r\n")
            clients.append(s)
        # Within a few of every one: fds lagwatch opens and closes on its own come and go.
        held = wait_for("lagwatch holding every connection",
                        lambda: open_fds(lw.proc.pid) >= baseline + IDLE + TRICKLING - 5
                        and open_fds(lw.proc.pid), 30)

        latencies = []
        for round_ in range(20):
            for s in clients[IDLE:]:
                s.sendall(b"X-Trickle-%d: 1\r\n" % round_)
            status, body, seconds = timed_scrape(lw)
            assert status == 200 and "lagwatch_replica_lag_seconds" in body, status
            latencies.append(seconds)
            time.sleep(0.1)
        assert lw.get("/api/v1/clusters")[0] == 200
        assert lw.get("/")[0] == 200
        print("\n[measured] %d connections held (lagwatch fds %d -> %d): /metrics median %.1f ms,"
              " max %.1f ms over %d scrapes" % (IDLE + TRICKLING, baseline, held,
                                               1000 * sorted(latencies)[len(latencies) // 2],
                                               1000 * max(latencies), len(latencies)))
    finally:
        for s in clients:
            s.close()

    wait_for("every connection closed on lagwatch's side",
             lambda: open_fds(lw.proc.pid) <= baseline + 1, 10)
    assert "failed" not in "\n".join(line for line in lw.log_text().splitlines()
                                     if "accepting a connection" in line), lw.log_text()[-2000:]
    limits = open("/proc/%d/limits" % lw.proc.pid).read()
    assert any(line.startswith("Max open files") and int(line.split()[3]) >= 4096
               for line in limits.splitlines()), limits


def test_oversized_and_malformed_requests_get_their_4xx_and_the_server_stays_up(
        pg, lagwatch_factory):
    lw = lagwatch_factory(pg.toml())
    huge_header = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 64 * 1024 + b"\r\n\r\n"
    assert status_of(exchange(lw.port, huge_header)) == 431
    many_headers = b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-H%d: %s\r\n" % (i, b"v" * 40) for i in range(2000)) + b"\r\n"
    assert status_of(exchange(lw.port, many_headers)) == 431
    huge_body = (b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                 % (8 * 1024 * 1024))
    assert status_of(exchange(lw.port, huge_body + b"x" * 65536)) == 413
    for junk in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # TLS hello
                 b"GARBAGE\r\n\r\n",
                 b"GET /metrics HTTP/9.9\r\n\r\n",
                 b"GET /metrics HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                 b"GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"):
        answer = exchange(lw.port, junk)
        assert answer == b"" or status_of(answer) == 400, (junk[:30], answer[:200])
    assert lw.proc.poll() is None, "lagwatch exited"
    status, body, _ = timed_scrape(lw)
    assert status == 200 and "lagwatch_node_up" in body


def test_path_traversal_on_the_status_page_reads_nothing_from_disk(pg, lagwatch_factory):
    lw = lagwatch_factory(pg.toml())
    config_text = lw.config.read_text()
    paths = ["/../../../../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
             "/..%2f..%2f..%2f..%2fetc%2fpasswd", "//etc/passwd", "/.%2e/.%2e/etc/passwd",
             "/static/..%252f..%252fetc%252fpasswd", "/index.html/../../etc/passwd",
             "/" + str(lw.config), "/%00/etc/passwd", "/..\\..\\etc\\passwd",
             "/?file=../../../../etc/passwd", "/metrics/../../../etc/passwd"]
    for path in paths:
        answer = exchange(lw.port, b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n")
        status = status_of(answer)
        assert status in (200, 400, 404), (path, answer[:200])
        assert b"root:" not in answer, path
        # A 404 may name the path asked for; it never holds what is at it.
        assert config_text.encode() not in answer and b"[server]" not in answer, path
        if status == 200:   # only the page itself (the query string is not read)
            assert path.startswith("/?") and b"<html" in answer.lower(), (path, answer[:200])
    assert lw.get("/")[0] == 200 and lw.get("/metrics")[0] == 200
