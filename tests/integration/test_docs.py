"""The reference docs cannot drift from the code:

- docs/metrics.md lists exactly the metric families of a live scrape (real PostgreSQL and
  MariaDB, a router push target and an alert receiver configured), with their types and
  labels; a metric the doc marks "(only when …)" may be absent unless its condition holds in
  that setup;
- docs/configuration.md lists every key the loader accepts (src/config.cpp's allow_only
  lists, the alert conditions), and no key it does not;
- docs/api.md names every endpoint and query parameter src/api.cpp serves, and the agent
  replies;
- docs/operations.md grants the monitoring users exactly what the test fixtures grant (the
  users every integration test runs lagwatch with);
- every relative link and anchor in the docs and the README resolves.
"""
import os
import re
import subprocess
import time

import pytest

from conftest import ROOT, wait_for
from receiver import Receiver

DOCS = os.path.join(ROOT, "docs")


def read(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


# ---- docs/metrics.md against a live scrape ------------------------------------------------

# The live setup below has both engines, a [[routing.push]] and an [[alerting.receiver]], so
# an "(only when …)" naming one of these holds there and its metric must be present.
CONDITIONS_MET = ("[[routing.push]]", "[[alerting.receiver]]", "MySQL", "PostgreSQL")


class DocumentedMetric:
    def __init__(self, name, type_, labels, optional_labels, meaning):
        self.name = name
        self.type = type_
        self.labels = labels
        self.optional_labels = optional_labels
        m = re.match(r"\(only when ([^)]*)\)", meaning.strip())
        self.condition = m.group(1) if m else None

    @property
    def required(self):
        return self.condition is None or any(c in self.condition for c in CONDITIONS_MET)


def documented_metrics():
    """{name: DocumentedMetric} from the `| metric | type | labels | meaning |` tables."""
    metrics = {}
    for line in read("docs", "metrics.md").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not re.fullmatch(r"`lagwatch_\w+`", cells[0]):
            continue
        name = cells[0].strip("`")
        assert name not in metrics, "docs/metrics.md lists %s twice" % name
        optional = set(re.findall(r"\[`(\w+)`\]", cells[2]))
        labels = set(re.findall(r"`(\w+)`", cells[2])) - optional
        metrics[name] = DocumentedMetric(name, cells[1], labels, optional, cells[3])
    assert len(metrics) > 20, "found only %s in docs/metrics.md" % sorted(metrics)
    return metrics


def scraped_families(text):
    """{family: (type, set of label names)} from Prometheus text, read by hand: the Python
    client's parser renames counters (drops `_total`), and the doc uses exposition names."""
    types, labels = {}, {}
    for line in text.splitlines():
        m = re.match(r"# TYPE (\w+) (\w+)", line)
        if m:
            types[m.group(1)] = m.group(2)
            labels.setdefault(m.group(1), set())
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(r"(\w+)(?:\{(.*)\})? ", line)
        assert m, "unparsable sample line: %r" % line
        name = m.group(1)
        family = name
        if name not in types:
            for suffix in ("_bucket", "_sum", "_count"):
                if name.endswith(suffix) and name[:-len(suffix)] in types:
                    family = name[:-len(suffix)]
        assert family in types, "sample %s has no # TYPE" % name
        names = set(re.findall(r'(?:^|,)\s*([A-Za-z_]\w*)="', m.group(2) or ""))
        labels[family] |= names - {"le"}
    return {name: (types[name], labels[name]) for name in types}


@pytest.fixture
def live_scrape(pg, mysql, lagwatch_factory, tmp_path):
    """Families seen over the scrapes of one lagwatch watching both engines, with a router
    receiving pushes and a webhook receiving alerts: polled until every documented metric
    that must be there is there (lag stages need writes), at most 30 s."""
    router = Receiver()
    alerts = Receiver()
    try:
        url_file = tmp_path / "webhook.url"
        url_file.write_text("http://127.0.0.1:%d/alerts\n" % alerts.port)
        config = "\n".join([
            "[routing]",
            "[[routing.push]]",
            'url = "http://127.0.0.1:%d/push"' % router.port,
            "[alerting]",
            'state_file = "%s"' % (tmp_path / "alerts.json"),
            "[[alerting.receiver]]",
            'type = "webhook"',
            'url_file = "%s"' % url_file,
            "",
        ]) + pg.toml(cluster="a") + mysql.toml(cluster="b")
        lw = lagwatch_factory(config)
        required = {n for n, m in documented_metrics().items() if m.required}
        families, texts = {}, []
        deadline = time.time() + 30
        while True:
            text = lw.scrape()
            texts.append(text)
            for name, (type_, labels) in scraped_families(text).items():
                old = families.get(name, (type_, set()))
                families[name] = (type_, old[1] | labels)
            if required <= families.keys() or time.time() > deadline:
                break
            time.sleep(0.5)
        yield families, texts[-1], lw
    finally:
        router.stop()
        alerts.stop()


def test_metrics_doc_matches_a_live_scrape(live_scrape):
    families, _, _ = live_scrape
    documented = documented_metrics()
    undocumented = sorted(set(families) - set(documented))
    assert not undocumented, "in the scrape but not in docs/metrics.md: %s" % undocumented
    missing = sorted(n for n, m in documented.items() if m.required and n not in families)
    assert not missing, (
        "documented in docs/metrics.md but not in the scrape (mark a conditional one "
        "\"(only when …)\"): %s" % missing)
    problems = []
    for name, (type_, labels) in sorted(families.items()):
        doc = documented[name]
        if doc.type != type_:
            problems.append("%s: documented as %s, exported as %s" % (name, doc.type, type_))
        if not labels <= doc.labels | doc.optional_labels:
            problems.append("%s: undocumented labels %s" % (
                name, sorted(labels - doc.labels - doc.optional_labels)))
        if not doc.labels <= labels:
            problems.append("%s: documented labels %s not exported" % (
                name, sorted(doc.labels - labels)))
    assert not problems, "\n".join(problems)


def test_live_scrape_passes_promtool(live_scrape):
    _, text, _ = live_scrape
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), (
        r.stdout + r.stderr)


def test_api_doc_examples_use_the_live_field_names(live_scrape):
    """The JSON examples in docs/api.md show the fields the API really returns."""
    _, _, lw = live_scrape
    doc = read("docs", "api.md")
    cluster = lw.clusters()[0]
    replica = [n for n in cluster["nodes"] if n["role"] == "replica"][0]
    node_keys = set(replica) - {"error"}
    channel_keys = set(replica["channels"][0])
    _, replica_list = lw.replicas(cluster="a")
    list_keys = set(replica_list) | set(replica_list["replicas"][0]) | set(replica_list["primary"])
    missing = sorted(k for k in set(cluster) | node_keys | channel_keys | list_keys
                     if '"%s"' % k not in doc)
    assert not missing, "fields the API returns that docs/api.md never shows: %s" % missing


# ---- docs/configuration.md against the loader ---------------------------------------------

def loader_keys():
    """Every key name src/config.cpp accepts: its allow_only({...}) lists and the alert
    condition names ([alerting.for] keys)."""
    source = read("src", "config.cpp")
    keys = set()
    for block in re.findall(r"allow_only\(\s*\{(.*?)\}\s*\)", source, re.S):
        keys |= set(re.findall(r'"(\w+)"', block))
    conditions = re.findall(r'\{Condition::\w+, "(\w+)"', read("src", "alerting_conditions.h"))
    assert conditions, "no conditions found in src/alerting_conditions.h"
    assert "listen" in keys and "password_file" in keys, keys
    return keys, set(conditions)


def documented_keys():
    """First-column names of the docs/configuration.md tables headed `| key |` or
    `| condition |`, and the tables named by section headings (`## `[[cluster.node]]``);
    dotted names give each part."""
    keys = set()
    in_table = False
    for line in read("docs", "configuration.md").splitlines():
        heading = re.match(r"#+ `\[+([\w.]+)\]+`$", line)
        if heading:
            keys |= set(heading.group(1).split("."))
        if not line.startswith("|"):
            in_table = False
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] in ("key", "condition"):
            in_table = True
            continue
        if in_table and not set(cells[0]) <= set("-: "):
            for name in re.findall(r"`([\w.]+)`", cells[0]):
                keys |= set(name.split("."))
    return keys


def test_configuration_doc_lists_every_key_the_loader_accepts():
    keys, conditions = loader_keys()
    documented = documented_keys()
    missing = sorted((keys | conditions) - documented)
    assert not missing, "accepted by src/config.cpp but not in docs/configuration.md: %s" % missing
    extra = sorted(documented - keys - conditions)
    assert not extra, "in docs/configuration.md but not accepted by src/config.cpp: %s" % extra


def test_configuration_doc_defaults_match_the_code():
    doc = read("docs", "configuration.md")
    header = read("src", "config.h")
    listen = re.search(r'std::string listen = "([^"]+)"', header).group(1)
    assert "| `listen` | `host:port` | `\"%s\"` |" % listen in doc, listen
    for key, default in (("interval", '"1s"'), ("timeout", '"800ms"'), ("keepalive", '"30s"'),
                         ("rise", "`3`"), ("fall", "`1`"), ("min_serving", "`1`")):
        assert re.search(r"\| `%s` \|[^|]*\| `?%s`? \|" % (key, re.escape(default.strip("`"))),
                         doc), "%s default %s not in docs/configuration.md" % (key, default)


# ---- docs/api.md against src/api.cpp ----------------------------------------------------

def test_api_doc_names_every_endpoint_and_parameter():
    doc = read("docs", "api.md")
    source = read("src", "api.cpp")
    paths = set(re.findall(r'path == "(/[^"]*)"', source))
    assert {"/metrics", "/-/healthy", "/-/ready", "/-/reload", "/api/v1/clusters", "/"} <= paths
    for path in paths:
        assert "`GET %s`" % path in doc or "`POST %s`" % path in doc, path
    for path in ("/api/v1/clusters/{cluster}/replicas",
                 "/api/v1/clusters/{cluster}/nodes/{node}/health",
                 "/api/v1/clusters/{cluster}/nodes/{node}/primary"):
        assert path in doc, path
    parameters = set(re.findall(r'\.find\("(\w+)"\)', source))
    assert {"max_lag", "min_position", "index", "wait"} <= parameters, parameters
    for p in parameters:
        assert "`%s=" % p in doc, "query parameter %s is not in docs/api.md" % p
    for header in re.findall(r'\{"(X-Lagwatch-\w+|ETag|Cache-Control)"', source):
        assert header in doc, header
    for status in re.findall(r"json_response\((\d{3})|text_response\((\d{3})", source):
        code = status[0] or status[1]
        assert "**%s**" % code in doc or "| %s |" % code in doc or code == "200", code


def test_api_doc_has_the_agent_replies():
    doc = read("docs", "api.md")
    header = read("src", "agent_check.h")
    for reply in ("up ready NN%", "drain", "down #unreachable", "down #no data yet",
                  "down #unknown cluster/node"):
        assert reply.split(" NN")[0] in header, "src/agent_check.h no longer says %r" % reply
        assert "`%s" % reply in doc, "docs/api.md lacks the agent reply %r" % reply


# ---- least privilege ----------------------------------------------------------------------

def normalized_grants(text):
    """GRANT statements to the lagwatch user, with MySQL host parts written as @HOST."""
    grants = set()
    for stmt in re.findall(r"^\s*(GRANT [^;\n]+ TO '?lagwatch'?[^;\n]*;)", text, re.M):
        grants.add(re.sub(r"'lagwatch'@'[^']*'", "'lagwatch'@HOST", stmt.strip()))
    return grants


def heartbeat_statements():
    """The statements tests/integration/test_heartbeat.py sets the heartbeat table up with."""
    try:
        import test_heartbeat
    except ImportError:
        return []
    return [stmt + ";" for statements in test_heartbeat.SETUP.values() for stmt in statements]


def test_operations_doc_grants_what_the_tests_run_with():
    text = read("docs", "operations.md")
    doc = normalized_grants(text)
    heartbeat = heartbeat_statements()
    fixtures = (normalized_grants(read("scripts", "fixtures", "pg")) |
                normalized_grants(read("scripts", "fixtures", "mysql")) |
                normalized_grants("\n".join(heartbeat)))
    assert "GRANT pg_monitor TO lagwatch;" in fixtures, fixtures
    assert "GRANT BINLOG MONITOR, REPLICA MONITOR ON *.* TO 'lagwatch'@HOST;" in fixtures, fixtures
    missing = fixtures - doc
    assert not missing, "the tests grant %s; docs/operations.md does not say so" % missing
    # MySQL 8 and MariaDB < 10.5 are the one documented grant the tests cannot exercise.
    extra = doc - fixtures - {"GRANT REPLICATION CLIENT ON *.* TO 'lagwatch'@HOST;"}
    assert not extra, "docs/operations.md grants more than the tests need: %s" % extra
    for stmt in heartbeat:
        if not stmt.startswith("GRANT"):
            assert stmt in text, "test_heartbeat.py runs %r; docs/operations.md does not" % stmt


# ---- links --------------------------------------------------------------------------------

LINKED_FROM = ["README.md", "docs/configuration.md", "docs/metrics.md", "docs/api.md",
               "docs/operations.md"]


def anchors(path):
    """GitHub's heading anchors of a Markdown file."""
    found, seen = set(), {}
    in_code = False
    for line in read(path).splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code:
            continue
        m = re.match(r"#{1,6} (.*)", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).replace("`", "").strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        found.add(slug if n == 0 else "%s-%d" % (slug, n))
    return found


@pytest.mark.parametrize("page", LINKED_FROM)
def test_links_resolve(page):
    text = read(page)
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
        if not os.path.exists(os.path.join(ROOT, resolved)):
            broken.append("%s (no file %s)" % (target, resolved))
        elif anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
            broken.append("%s (no heading #%s in %s)" % (target, anchor, resolved))
    assert not broken, "%s: broken links: %s" % (page, broken)


def test_readme_is_a_front_door():
    text = read("README.md")
    for command in ("scripts/demo", "scripts/test"):
        assert "```sh\n%s\n```" % command in text, command
    for page in ("docs/configuration.md", "docs/metrics.md", "docs/api.md",
                 "docs/operations.md"):
        assert "](%s)" % page in text, page
    assert "## How lag is measured" in text
    assert len(text.splitlines()) < 150, "the README should stay short; details go to docs/"
