"""The command line end to end, with the real binary: `--version` prints the version and the
revision that lagwatch_build_info exports; `--log-format json` writes one JSON object per
line (ts, level, msg); `--log-level warn` leaves info lines out. The log tests watch the real
PostgreSQL fixture plus a node nobody listens on, and go through a reload, a refused reload
and a stop, so the log has lines of every level and messages with quotes in them."""
import json
import os
import re
import signal
import subprocess
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from conftest import LAGWATCH_BIN, ROOT, free_port_block, wait_for
from processes import stop_process

ISO_UTC = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


class Process:
    """lagwatch started with extra flags (conftest's Lagwatch takes none), its stdout and
    stderr in files of their own; stopped by PID."""

    def __init__(self, tmp_path, config_text, *flags):
        self.port = free_port_block(1)
        self.config = tmp_path / ("cli-%d.toml" % self.port)
        self.config.write_text('[server]\nlisten = "127.0.0.1:%d"\n%s' % (self.port, config_text))
        self.stdout = open(tmp_path / ("cli-%d.stdout" % self.port), "w+")
        self.stderr = open(tmp_path / ("cli-%d.stderr" % self.port), "w+")
        self.proc = subprocess.Popen([LAGWATCH_BIN, "--config", str(self.config), *flags],
                                     stdout=self.stdout, stderr=self.stderr)
        try:
            wait_for("lagwatch ready", lambda: self.proc.poll() is not None or
                     self.status("/-/ready") == 200, 15)
            assert self.proc.poll() is None, "lagwatch exited with %d:\n%s" % (
                self.proc.returncode, self.output())
        except BaseException:
            self.stop()
            raise

    def status(self, path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, path),
                                        timeout=5) as r:
                return r.status
        except OSError:
            return None

    def scrape(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.port, timeout=5) as r:
            return r.read().decode()

    def value(self, name):
        for family in text_string_to_metric_families(self.scrape()):
            for s in family.samples:
                if s.name == name:
                    return s.value
        return None

    def output(self):
        """Everything written to stdout and to stderr, in that order."""
        text = []
        for f in (self.stdout, self.stderr):
            f.flush()
            f.seek(0)
            text.append(f.read())
        return "".join(text)

    def stop(self):
        stop_process(self.proc, grace_seconds=10)
        self.stdout.close()
        self.stderr.close()


def config_with_a_dead_node(pg):
    """The fixture's cluster, and one whose only node's port nobody listens on (a warning
    every time it fails)."""
    dead = free_port_block(1)
    return pg.toml() + (
        '[[cluster]]\nname = "gone"\nengine = "postgres"\ninterval = "500ms"\n'
        'timeout = "400ms"\n[[cluster.node]]\nname = "gone1"\n'
        'dsn = "postgresql://lagwatch@127.0.0.1:%d/postgres?sslmode=disable"\n'
        'password_file = "%s"\n' % (dead, pg.password_file))


def exercise(lw):
    """A successful SIGHUP reload, a refused one (an error naming a quoted key), then a stop:
    lines of every level."""
    wait_for("the dead node's failure logged", lambda: "collection failed" in lw.output(), 10)
    before = lw.value("lagwatch_config_last_reload_success_timestamp_seconds")
    lw.proc.send_signal(signal.SIGHUP)
    wait_for("the reload applied", lambda: lw.value(
        "lagwatch_config_last_reload_success_timestamp_seconds") != before, 10)
    good = lw.config.read_text()
    lw.config.write_text(good + '\n[defaults]\nintervall = "1s"\n')
    lw.proc.send_signal(signal.SIGHUP)
    wait_for("the reload refused", lambda: lw.value("lagwatch_config_last_reload_successful") == 0,
             10)
    lw.config.write_text(good)
    lw.proc.send_signal(signal.SIGTERM)
    assert lw.proc.wait(timeout=10) == 0, lw.output()
    return lw.output()


def test_version_prints_the_version_and_revision_build_info_exports(tmp_path):
    r = subprocess.run([LAGWATCH_BIN, "--version"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and r.stderr == "", (r.returncode, r.stderr)
    m = re.fullmatch(r"lagwatch (\S+) \(revision (\S+)\)\n", r.stdout)
    assert m, r.stdout
    version, revision = m.groups()
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        project = re.search(r"project\(lagwatch VERSION (\S+)", f.read()).group(1)
    assert version == project, (version, project)
    # The commit the build was configured at (or "unknown" without .git, as in a container).
    if revision != "unknown":
        assert re.fullmatch(r"[0-9a-f]{12}", revision), revision
        assert subprocess.run(["git", "-C", ROOT, "cat-file", "-e", revision + "^{commit}"],
                              capture_output=True).returncode == 0, revision

    lw = Process(tmp_path, "")  # no cluster needed: build_info is there from the start
    try:
        info = [(s.labels, s.value) for f in text_string_to_metric_families(lw.scrape())
                for s in f.samples if s.name == "lagwatch_build_info"]
        assert info == [({"version": version, "revision": revision}, 1.0)], info
    finally:
        lw.stop()


def test_log_format_json_writes_one_json_object_per_line(pg, tmp_path):
    lw = Process(tmp_path, config_with_a_dead_node(pg), "--log-format", "json")
    try:
        output = exercise(lw)
    finally:
        lw.stop()
    lines = output.splitlines()
    assert len(lines) >= 5, output
    messages = {}
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError as e:
            raise AssertionError("not JSON (%s): %r\nwhole log:\n%s" % (e, line, output))
        assert isinstance(entry, dict), line
        assert re.fullmatch(ISO_UTC, entry.get("ts", "")), line
        assert entry.get("level") in ("debug", "info", "warning", "error", "critical"), line
        assert isinstance(entry.get("msg"), str) and entry["msg"], line
        assert all(isinstance(v, str) for v in entry.values()), line
        messages.setdefault(entry["level"], set()).add(entry["msg"])
    assert {"lagwatch started", "config reloaded", "stopping"} <= messages.get("info", set()), \
        messages
    assert "collection failed" in messages.get("warning", set()), messages
    assert "config reload failed; the running config stays" in messages.get("error", set()), \
        messages
    refused = [json.loads(l) for l in lines if '"config reload failed' in l][0]
    assert 'unknown key "defaults.intervall"' in refused["error"], refused


def test_log_level_warn_leaves_info_lines_out(pg, tmp_path):
    lw = Process(tmp_path, config_with_a_dead_node(pg), "--log-level", "warn")
    try:
        output = exercise(lw)
    finally:
        lw.stop()
    levels = re.findall(r"^ts=%s level=(\w+) " % ISO_UTC, output, re.M)
    assert len(levels) == len(output.splitlines()), "lines not in logfmt:\n" + output
    assert "info" not in levels and "debug" not in levels, output
    assert "warning" in levels and "error" in levels, output
    # What info lines would have said is missing, though it happened (reload, stop).
    for message in ("lagwatch started", "config reloaded", "stopping"):
        assert message not in output, output
