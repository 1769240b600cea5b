"""A real HAProxy running examples/haproxy/haproxy.cfg, every address given through the
environment, stopped by PID. Shared by tests/integration/test_haproxy.py and bench/reaction;
no pytest here."""
import csv
import io
import os
import shutil
import socket
import subprocess

from processes import stop_process

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
HAPROXY_CFG = os.path.join(ROOT, "examples", "haproxy", "haproxy.cfg")


def example_env(socket_path, reads_port, writes_port, lagwatch_port, agent_port, node_ports,
                cluster="orders", check_inter="1s"):
    """The environment the example config reads: `node_ports` maps pg1..pg3 to their ports."""
    return dict(os.environ,
                HAPROXY_STATS_SOCKET=socket_path,
                PG_READS_BIND="127.0.0.1:%d" % reads_port,
                PG_WRITES_BIND="127.0.0.1:%d" % writes_port,
                LAGWATCH_ADDR="127.0.0.1", LAGWATCH_HTTP_PORT=str(lagwatch_port),
                LAGWATCH_AGENT_PORT=str(agent_port), LAGWATCH_CLUSTER=cluster,
                CHECK_INTER=check_inter,
                **{"%s_ADDR" % n.upper(): "127.0.0.1:%d" % p for n, p in node_ports.items()})


class Haproxy:
    """haproxy -db on the example config, every address given through the environment."""

    def __init__(self, env, log_path, socket_path, reads_port, writes_port):
        self.socket_path = socket_path
        self.reads_port = reads_port
        self.writes_port = writes_port
        self.env = env
        check = subprocess.run([HAPROXY, "-c", "-f", HAPROXY_CFG], env=env, capture_output=True,
                               text=True, timeout=30)
        assert check.returncode == 0, "haproxy -c rejected the example:\n" + check.stdout + check.stderr
        self.log = open(log_path, "w+")
        self.proc = subprocess.Popen([HAPROXY, "-f", HAPROXY_CFG, "-db"], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def log_text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def command(self, line):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.socket_path)
            s.sendall((line + "\n").encode())
            chunks = []
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return b"".join(chunks).decode()
                chunks.append(chunk)

    def servers(self, proxy="pg-reads"):
        """{server: row of `show stat`} for one proxy; {} while the socket is not up yet."""
        try:
            text = self.command("show stat")
        except OSError:
            return {}
        rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
        return {r["svname"]: r for r in rows
                if r["pxname"] == proxy and r["svname"] not in ("FRONTEND", "BACKEND")}

    def state(self, server, proxy="pg-reads"):
        """(status, weight) as HAProxy sees them, e.g. ("UP", 100), ("DOWN", 100), ("DRAIN", 0)."""
        row = self.servers(proxy).get(server)
        return (row["status"], int(row["weight"] or 0)) if row else (None, None)

    def exited(self):
        """None while running, else the exit status and the log, for a failure message."""
        if self.proc.poll() is None:
            return None
        return "haproxy exited with %d:\n%s" % (self.proc.returncode, self.log_text())

    def checked(self, standbys=("pg2", "pg3")):
        """Every server checked at least once and the standbys serving at weight 100 (servers
        start UP before their first check)."""
        reads, writes = self.servers("pg-reads"), self.servers("pg-writes")
        if not reads or not writes:
            return False  # the stats socket is not up yet
        return all(r["check_status"] not in ("", "INI") for r in writes.values()) and all(
            reads[n]["check_status"] == "L7OK" and reads[n]["agent_status"] == "L7OK"
            and self.state(n) == ("UP", 100) for n in standbys)

    def stop(self):
        stop_process(self.proc, grace_seconds=10)
        self.log.close()


def serving(state):
    """Whether HAProxy sends new connections to a server in this (status, weight) state."""
    status, weight = state
    return status == "UP" and weight > 0
