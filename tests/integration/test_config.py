"""Bad configs are refused at start and by --check-config with file:line:column messages."""
import re
import subprocess

import pytest

from conftest import LAGWATCH_BIN

GOOD_NODE = '''
[[cluster]]
name = "orders"
engine = "postgres"
[[cluster.node]]
name = "pg1"
dsn = "postgresql://lagwatch@127.0.0.1:5432/postgres"
password_env = "LW_TEST_PASSWORD"
'''

CASES = {
    # name: (config text, line, expected message fragment)
    "wrong type": ('[defaults]\ninterval = 5\n' + GOOD_NODE, 2, "interval"),
    "unknown key": (GOOD_NODE + 'adress = "127.0.0.1:5432"\n', 9, 'did you mean "address"'),
    "bad duration": ('[defaults]\ntimeout = "5x"\n' + GOOD_NODE, 2, '"5x"'),
    "missing password file": (GOOD_NODE.replace('password_env = "LW_TEST_PASSWORD"',
                                                'password_file = "/nonexistent/pw"'),
                              8, "/nonexistent/pw"),
    "password in dsn": (GOOD_NODE.replace("lagwatch@", "lagwatch:hunter2@"), 7, "password"),
    # Found by the collector's own DSN parser (libpq), still with the node's position.
    "unknown dsn parameter": (GOOD_NODE.replace("/postgres", "/postgres?sslmod=disable"), 5,
                              "sslmod"),
}


def run(args, tmp_path, text):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    env = {"LW_TEST_PASSWORD": "pw", "PATH": "/usr/bin:/bin"}
    return path, subprocess.run([LAGWATCH_BIN, *args, str(path)], capture_output=True,
                                text=True, env=env, timeout=20)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("mode", ["--check-config", "--config"])
def test_bad_config_is_refused_with_file_line_column(case, mode, tmp_path):
    text, line, fragment = CASES[case]
    path, r = run([mode], tmp_path, text)
    assert r.returncode != 0, (r.stdout, r.stderr)
    m = re.search(re.escape(str(path)) + r":(\d+):(\d+): (.*)", r.stderr)
    assert m, r.stderr
    assert int(m.group(1)) == line, r.stderr
    assert fragment in m.group(3), r.stderr
    assert "hunter2" not in r.stderr + r.stdout, "a secret reached the output"


def test_good_config_passes_check(tmp_path):
    _, r = run(["--check-config"], tmp_path, GOOD_NODE)
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout
