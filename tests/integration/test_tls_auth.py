"""Secure endpoints with the real binary: HTTPS scraped by curl trusting a CA made here, basic
auth (401 without, 200 with credentials), /metrics left open by metrics_open, and no password
in the log. Zero clusters are enough: nothing here is about databases."""
import os
import subprocess
import time
import urllib.error
import urllib.request
import base64

import pytest

from conftest import LAGWATCH_BIN, free_port_block
from processes import stop_process

# Fixed hashes (the unit tests use the same), made with Python's crypt and hashlib:
#   crypt.crypt("s3cret-bcrypt", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2**4))
#   hashlib.sha256(b"scrape-me").hexdigest()
ADMIN_PASSWORD = "s3cret-bcrypt"
ADMIN_HASH = "$2b$04$HBZPO37gbUnRHpclcpL4ce3ADDkyuzL7iMmOhfgsvBhxKhgQR2ZaC"
SCRAPER_PASSWORD = "scrape-me"
SCRAPER_HASH = "sha256:cbf2e4e7c4a228c087068e9f9cc2305faffed4c6e94598cfc4c9d6ddc11409d2"

BASIC_AUTH = """[server.basic_auth]
users = {{ admin = "{admin}", prometheus = "{scraper}" }}
{extra}
"""


def basic_auth(metrics_open=False):
    return BASIC_AUTH.format(admin=ADMIN_HASH, scraper=SCRAPER_HASH,
                             extra="metrics_open = true" if metrics_open else "")


def openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, "openssl %s failed:\n%s" % (" ".join(args), r.stderr)


@pytest.fixture
def certs(tmp_path):
    """A CA and a server certificate for 127.0.0.1 that it signed, as PEM files in tmp_path."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=lagwatch test CA", "-keyout", "ca.key", "-out", "ca.pem", cwd=tmp_path)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "server.key", "-out", "server.csr", cwd=tmp_path)
    (tmp_path / "san.ext").write_text("subjectAltName = IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.pem",
            cwd=tmp_path)
    return tmp_path


def tls_section(certs):
    return '[server.tls]\ncert_file = "%s"\nkey_file = "%s"\n' % (
        certs / "server.pem", certs / "server.key")


def curl(*args):
    """(exit code, HTTP status or 0, stderr) of one curl run."""
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
                        *args], capture_output=True, text=True, timeout=30)
    return r.returncode, int(r.stdout or 0), r.stderr


class TlsLagwatch:
    """lagwatch serving HTTPS: conftest's Lagwatch polls plain HTTP, so it cannot wait for this."""

    def __init__(self, tmp_path, server_extra):
        self.port = free_port_block(1)
        self.ca = tmp_path / "ca.pem"
        config = tmp_path / ("lagwatch-%d.toml" % self.port)
        config.write_text('[server]\nlisten = "127.0.0.1:%d"\n%s\n' % (self.port, server_extra))
        self.log_path = tmp_path / ("lagwatch-%d.log" % self.port)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([LAGWATCH_BIN, "--config", str(config)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            assert self.proc.poll() is None, "lagwatch exited:\n" + self.log_text()
            if self.curl("/-/healthy")[1] == 200:
                return
            time.sleep(0.1)
        pytest.fail("lagwatch not serving HTTPS within 15 s:\n" + self.log_text())

    def url(self, path, scheme="https"):
        return "%s://127.0.0.1:%d%s" % (scheme, self.port, path)

    def curl(self, path, *args):
        return curl("--cacert", str(self.ca), *args, self.url(path))

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text()

    def stop(self):
        stop_process(self.proc, grace_seconds=10)
        self.log.close()


@pytest.fixture
def tls_lagwatch(tmp_path):
    started = []

    def start(server_extra):
        lw = TlsLagwatch(tmp_path, server_extra)
        started.append(lw)
        return lw

    yield start
    for lw in started:
        lw.stop()


def request(lw, path, user=None, password=None):
    """(status, headers) of a plain-HTTP GET, with basic credentials if given."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (lw.port, path))
    if user is not None:
        token = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
        req.add_header("Authorization", "Basic " + token)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers)


def test_tls_scrape_with_curl_trusting_the_ca(certs, tls_lagwatch):
    lw = tls_lagwatch(tls_section(certs))
    code, status, err = lw.curl("/metrics")
    assert (code, status) == (0, 200), err
    r = subprocess.run(["curl", "-sS", "--cacert", str(certs / "ca.pem"), lw.url("/metrics")],
                       capture_output=True, text=True, timeout=30)
    assert "lagwatch_build_info" in r.stdout, r.stdout[:500] + r.stderr


def test_tls_port_refuses_plain_http_untrusted_certs_and_old_tls(certs, tls_lagwatch):
    lw = tls_lagwatch(tls_section(certs))
    code, status, err = curl(lw.url("/metrics", scheme="http"))
    assert code != 0 and status == 0, "plain HTTP got %d %s" % (status, err)
    code, status, err = curl(lw.url("/metrics"))  # the system's CAs do not know ours
    assert code == 60, "untrusted certificate: curl exit %d %s" % (code, err)
    code, status, err = lw.curl("/metrics", "--tlsv1.0", "--tls-max", "1.1")
    assert code != 0, "TLS 1.1 was accepted: %d %s" % (status, err)
    # The server is still fine after those failed handshakes.
    assert lw.curl("/metrics")[1] == 200


def test_basic_auth_401_without_and_200_with_credentials(lagwatch_factory):
    lw = lagwatch_factory("", server_extra=basic_auth())
    status, headers = request(lw, "/metrics")
    assert status == 401
    assert headers.get("WWW-Authenticate") == 'Basic realm="lagwatch"', headers
    assert request(lw, "/api/v1/clusters")[0] == 401
    assert request(lw, "/metrics", "prometheus", "wrong")[0] == 401
    assert request(lw, "/metrics", "nobody", SCRAPER_PASSWORD)[0] == 401
    assert request(lw, "/metrics", "prometheus", SCRAPER_PASSWORD)[0] == 200
    assert request(lw, "/api/v1/clusters", "admin", ADMIN_PASSWORD)[0] == 200
    assert request(lw, "/", "admin", ADMIN_PASSWORD)[0] == 200
    # Probes carry no credentials: health checks of containers and load balancers.
    assert request(lw, "/-/healthy")[0] == 200
    assert request(lw, "/-/ready")[0] == 200


def test_metrics_open_leaves_only_metrics_without_credentials(lagwatch_factory):
    lw = lagwatch_factory("", server_extra=basic_auth(metrics_open=True))
    assert request(lw, "/metrics")[0] == 200
    assert request(lw, "/api/v1/clusters")[0] == 401
    assert request(lw, "/api/v1/clusters", "admin", ADMIN_PASSWORD)[0] == 200


def test_tls_and_basic_auth_together(certs, tls_lagwatch):
    lw = tls_lagwatch(tls_section(certs) + basic_auth())
    assert lw.curl("/metrics")[1] == 401
    assert lw.curl("/metrics", "-u", "prometheus:" + SCRAPER_PASSWORD)[1] == 200
    assert lw.curl("/api/v1/clusters", "-u", "admin:" + ADMIN_PASSWORD)[1] == 200
    assert lw.curl("/api/v1/clusters", "-u", "admin:wrong")[1] == 401
    lw.stop()
    log = lw.log_text()
    for secret in (ADMIN_PASSWORD, SCRAPER_PASSWORD):
        assert secret not in log, log


def test_plain_password_in_config_is_refused_with_its_position(tmp_path):
    config = tmp_path / "lagwatch.toml"
    config.write_text('[server]\n[server.basic_auth]\nusers = { admin = "hunter2" }\n')
    r = subprocess.run([LAGWATCH_BIN, "--check-config", str(config)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "%s:3:19: " % config in r.stderr, r.stderr
    assert "never a plain password" in r.stderr, r.stderr
    assert "hunter2" not in r.stdout + r.stderr


def test_unreadable_key_file_is_refused_with_its_position(certs, tmp_path):
    config = tmp_path / "bad-tls.toml"
    config.write_text('[server.tls]\ncert_file = "%s"\nkey_file = "missing.key"\n'
                      % (certs / "server.pem"))
    r = subprocess.run([LAGWATCH_BIN, "--check-config", str(config)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1 and "%s:3:12: cannot read key_file" % config in r.stderr, r.stderr
