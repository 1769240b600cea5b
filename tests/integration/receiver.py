#!/usr/bin/env python3
"""A router's end of lagwatch's replica-list push (docs/push.md): records and verifies pushes.

As a library (tests/integration/test_push.py): Receiver() starts an HTTP server on 127.0.0.1 in
a thread, records every request, answers a scripted status sequence, can hang, and can be
stopped and restarted on the same port to play a router that is down.

As a script, a minimal router for trying lagwatch out:
    python3 tests/integration/receiver.py --port 8080 --secret-file router.secret
verifies each push (signature, timestamp window, generation never going back), prints it, and
answers 202, or 401/409 with the reason.
"""
import argparse
import hashlib
import hmac
import http.server
import json
import socket
import sys
import threading
import time

MAX_SKEW_SECONDS = 300  # a push signed further from our clock than this is refused (replay)
UNANSWERED = 0  # Request.status of a request held by hang() until the receiver was stopped


def read_secret(path):
    """The secret as lagwatch reads it: the file's bytes minus one trailing newline."""
    with open(path, "rb") as f:
        secret = f.read()
    if secret.endswith(b"\r\n"):
        return secret[:-2]
    if secret.endswith(b"\n"):
        return secret[:-1]
    return secret


def verify(secret, headers, body, now=None, max_skew=MAX_SKEW_SECONDS):
    """None when the push is signed with `secret` (bytes) and fresh; else the reason it is not.

    `headers` is any mapping with case-insensitive .get() (http.client.HTTPMessage) or exact
    header names; `body` the raw bytes received, before any JSON parsing.
    """
    timestamp = headers.get("X-Lagwatch-Timestamp")
    signature = headers.get("X-Lagwatch-Signature")
    if not timestamp or not signature:
        return "missing X-Lagwatch-Timestamp or X-Lagwatch-Signature"
    if not timestamp.isascii() or not timestamp.isdigit():
        return "X-Lagwatch-Timestamp is not unix seconds: %r" % timestamp
    now = time.time() if now is None else now
    skew = now - int(timestamp)
    if abs(skew) > max_skew:
        return "timestamp is %+.0f s from now, outside +-%d s (replayed or clock skew)" % (
            -skew, max_skew)
    expected = "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
    # Constant-time: a byte-by-byte early exit would let an attacker find it one byte at a time.
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return "signature does not match"
    return None


class Request:
    """One request as received."""

    def __init__(self, arrived, method, path, headers, body, client_port, status):
        self.arrived = arrived          # time.time() when the body had been read
        self.method = method
        self.path = path
        self.headers = headers          # http.client.HTTPMessage: case-insensitive .get()
        self.body = body                # bytes
        self.client_port = client_port  # the same port on two requests: a reused connection
        # What the receiver answered (or will, while hanging); UNANSWERED when it was stopped
        # while holding the answer: the client never got one.
        self.status = status

    @property
    def json(self):
        return json.loads(self.body)

    @property
    def generation(self):
        return int(self.headers.get("X-Lagwatch-Generation", "0"))

    def __repr__(self):
        return "<%s %s gen=%s status=%s at %.3f port %d>" % (
            self.method, self.path, self.headers.get("X-Lagwatch-Generation"), self.status,
            self.arrived, self.client_port)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, receiver):
        self.receiver = receiver
        self.connections = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request, client_address):
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)


class _Handler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections open, as a real router would, so lagwatch's reuse shows.
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self._handle()

    def do_GET(self):
        self._handle()

    def _handle(self):
        receiver = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request, headers, reply, hang = receiver._answer(self, body)
        status = request.status
        if hang and receiver._released.wait(hang):
            request.status = UNANSWERED  # stopped while holding it: the client got nothing
            self.close_connection = True
            return
        reply = reply.encode()
        try:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
        except OSError:
            self.close_connection = True

    def log_message(self, *args):
        pass


class Receiver:
    """An HTTP receiver on 127.0.0.1 for tests; see the module docstring.

    respond(500, 500, (429, {"Retry-After": "2"}), 202) scripts the next answers in order;
    after them every request gets `default_status`. hang(seconds) holds every answer that long.
    """

    def __init__(self, port=0, secret=None, default_status=202):
        self.secret = secret
        self.default_status = default_status
        self._lock = threading.Lock()
        self._requests = []
        self._script = []
        self._hang = 0
        self._released = threading.Event()
        self._server = None
        self._thread = None
        self.port = port
        self.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d/lagwatch" % self.port

    def start(self):
        """Listens again (same port after the first start)."""
        self._released.clear()
        self._server = _Server(("127.0.0.1", self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="receiver-%d" % self.port)
        self._thread.start()

    def stop(self):
        """Closes the listener and every open connection: the router is down."""
        if self._server is None:
            return
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        with self._server.connections_lock:
            for conn in list(self._server.connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._thread.join(timeout=5)
        self._server = None

    def respond(self, *answers):
        """Scripts the next answers: each an int status or (status, {header: value})."""
        with self._lock:
            self._script = [a if isinstance(a, tuple) else (a, {}) for a in answers]

    def hang(self, seconds):
        """Holds every answer `seconds` (0: answer at once again). stop() releases the held
        requests unanswered (status UNANSWERED) and closes their connections."""
        with self._lock:
            self._hang = seconds

    def requests(self):
        with self._lock:
            return list(self._requests)

    def pushes(self, cluster=None):
        """The POSTs received (of one cluster when given), oldest first."""
        return [r for r in self.requests() if r.method == "POST" and
                (cluster is None or r.headers.get("X-Lagwatch-Cluster") == cluster)]

    def clear(self):
        with self._lock:
            self._requests.clear()

    def _answer(self, handler, body):
        with self._lock:
            if self._script:
                status, headers = self._script.pop(0)
            else:
                status, headers = self.default_status, {}
            reply = "accepted" if status < 300 else "scripted answer"
            if self.secret is not None and status < 300:
                why = verify(self.secret, handler.headers, body)
                if why:
                    status, reply = 401, why
            request = Request(time.time(), handler.command, handler.path, handler.headers, body,
                              handler.client_address[1], status)
            self._requests.append(request)
            return request, headers, reply, self._hang


def main():
    parser = argparse.ArgumentParser(description="A minimal router receiving lagwatch pushes.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--secret-file", help="the secret_file of the [[routing.push]] entry; "
                        "without it signatures are not checked")
    args = parser.parse_args()
    secret = read_secret(args.secret_file) if args.secret_file else None
    last_generation = {}
    lock = threading.Lock()

    class Router(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, reason, push = 202, "accepted", None
            why = verify(secret, self.headers, body) if secret is not None else None
            if why:
                status, reason = 401, why
            else:
                try:
                    push = json.loads(body)
                    cluster, generation = push["cluster"], int(push["generation"])
                except (ValueError, KeyError, TypeError) as e:
                    push, status, reason = None, 400, "not a replica list: %s" % e
            if push is not None:
                with lock:
                    # Equal is a keepalive; lower is an old push replayed (or sent out of order).
                    if generation < last_generation.get(cluster, 0):
                        status, reason = 409, "generation %d is older than %d" % (
                            generation, last_generation[cluster])
                    else:
                        last_generation[cluster] = generation
                if status == 202:
                    replicas = ", ".join("%s(%s%s)" % (r["node"], r["address"],
                                                       ", degraded" if r["degraded"] else "")
                                         for r in push["replicas"])
                    primary = push["primary"]["address"] if push["primary"] else "-"
                    print("%s generation=%d primary=%s replicas=[%s] fallback=%s" % (
                        cluster, generation, primary, replicas, push["fallback"]), flush=True)
            if status != 202:
                print("refused (%d): %s" % (status, reason), file=sys.stderr, flush=True)
            reply = reason.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer((args.host, args.port), Router)
    print("listening on %s:%d" % server.server_address[:2], file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
