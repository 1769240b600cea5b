"""The deployment files, checked without the engines that would run them (no Docker daemon,
systemd or Kubernetes cluster here): the Dockerfile and .dockerignore, packaging/ (systemd
unit, example config) and examples/kubernetes/.

- Dockerfile: every package it apt-installs exists in Debian; every shared library the built
  lagwatch links is provided by a package the runtime stage installs (or one those depend
  on, or the base image's C/C++ runtime); every COPY source exists and is not ignored; every
  script it RUNs exists and is executable; port, health check, user and config path agree
  with lagwatch's defaults and the docs.
- packaging/lagwatch.service: hardened keys present; `systemd-analyze verify` is silent.
- examples/kubernetes: well-formed, labels/selectors/ports/paths consistent with each other
  and with the Dockerfile; the configs they carry pass `lagwatch --check-config`; the
  StatefulSet's init script turns pod ordinals into `shard = "i/n"`.
"""
import os
import re
import shlex
import shutil
import subprocess
import fnmatch

import pytest
import yaml

from conftest import LAGWATCH_BIN, ROOT

DOCKERFILE = os.path.join(ROOT, "Dockerfile")
DOCKERIGNORE = os.path.join(ROOT, ".dockerignore")
SETUP = os.path.join(ROOT, "scripts", "setup")
UNIT = os.path.join(ROOT, "packaging", "lagwatch.service")
EXAMPLE_CONFIG = os.path.join(ROOT, "packaging", "lagwatch.toml")
K8S = os.path.join(ROOT, "examples", "kubernetes")

# Part of every debian:bookworm-slim image (apt itself links them), so the runtime stage need
# not name them.
BASE_IMAGE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6", "gcc-12-base"}


# ---- Dockerfile parsing -----------------------------------------------------------------

class Instruction:
    def __init__(self, keyword, args, line):
        self.keyword = keyword
        self.args = args
        self.line = line

    def exec_form(self):
        """The JSON array of an exec-form instruction, or None for the shell form."""
        import json
        text = self.args.strip()
        if not text.startswith("["):
            return None
        return json.loads(text)

    def __repr__(self):
        return "Dockerfile:%d: %s %s" % (self.line, self.keyword, self.args)


def parse_dockerfile(path=DOCKERFILE):
    """[(stage_name, base_image, [Instruction])] with line continuations joined."""
    stages = []
    with open(path) as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        start = i
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        text = line
        while text.rstrip().endswith("\\") and i < len(lines):
            nxt = lines[i]
            i += 1
            if nxt.lstrip().startswith("#"):
                continue  # comments inside a continued instruction are dropped by Docker too
            text = text.rstrip()[:-1] + " " + nxt
        keyword, _, args = text.strip().partition(" ")
        ins = Instruction(keyword.upper(), args.strip(), start + 1)
        if ins.keyword == "FROM":
            words = ins.args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append((name, words[0], []))
        else:
            assert stages, "%r comes before the first FROM" % ins
            stages[-1][2].append(ins)
    return stages


def instructions(stage, keyword):
    return [i for i in stage[2] if i.keyword == keyword]


def apt_installed(stage):
    """Packages named by `apt-get install` in the stage's RUN instructions."""
    packages = []
    for run in instructions(stage, "RUN"):
        for command in re.split(r"&&|;|\|\|", run.args):
            words = shlex.split(command)
            while words and "=" in words[0]:
                words.pop(0)  # VAR=value prefixes
            if len(words) >= 2 and words[0] in ("apt-get", "apt") and words[1] == "install":
                packages += [w for w in words[2:] if not w.startswith("-")]
    return packages


def setup_packages(array):
    """The packages of one bash array (BUILD_PACKAGES, TEST_PACKAGES) in scripts/setup."""
    with open(SETUP) as f:
        text = f.read()
    m = re.search(r"^%s=\((.*?)^\)" % array, text, re.S | re.M)
    assert m, "scripts/setup has no %s=( ... ) array" % array
    words = []
    for line in m.group(1).splitlines():
        words += line.split("#")[0].split()
    return words


@pytest.fixture(scope="module")
def stages():
    return parse_dockerfile()


@pytest.fixture(scope="module")
def runtime(stages):
    return stages[-1]


def test_every_stage_is_debian_bookworm_slim(stages):
    assert len(stages) >= 2, "expected a build and a runtime stage: %s" % [s[0] for s in stages]
    for name, base, _ in stages:
        assert base == "debian:bookworm-slim", "stage %s is FROM %s" % (name, base)


def test_build_stage_uses_the_readme_scripts(stages):
    runs = " ".join(i.args for i in instructions(stages[0], "RUN"))
    assert "scripts/setup --build-only" in runs, runs
    assert "scripts/build" in runs, runs


def test_every_apt_package_exists_in_debian(stages):
    packages = set(setup_packages("BUILD_PACKAGES"))
    for stage in stages:
        packages |= set(apt_installed(stage))
    # One apt-cache call for all (it is slow to start): it prints the packages it knows and
    # fails only for the others.
    r = subprocess.run(["apt-cache", "show", "--no-all-versions", *sorted(packages)],
                       capture_output=True, text=True)
    known = set(re.findall(r"^Package: (\S+)$", r.stdout, re.M))
    missing = sorted(packages - known)
    assert not missing, "not in Debian's package lists (apt-cache show): %s" % missing


def test_setup_default_mode_installs_build_and_test_packages():
    build = setup_packages("BUILD_PACKAGES")
    test = setup_packages("TEST_PACKAGES")
    assert "cmake" in build and "libgtest-dev" in build, build
    assert "postgresql-15" in test and "mariadb-server" in test, test
    assert not set(build) & set(test), "listed twice: %s" % (set(build) & set(test))
    r = subprocess.run([SETUP, "--no-such-flag"], capture_output=True, text=True)
    assert r.returncode == 2 and "usage" in r.stderr, (r.returncode, r.stderr)
    assert subprocess.run(["bash", "-n", SETUP]).returncode == 0


def dpkg_owners(paths):
    """{path: the Debian package that installed it}, trying the /usr-merged spellings."""
    candidates = {}
    for path in paths:
        real = os.path.realpath(path)
        spellings = {path, real}
        for p in (path, real):
            if p.startswith("/lib"):
                spellings.add("/usr" + p)
            if p.startswith("/usr/lib"):
                spellings.add(p[len("/usr"):])
        for spelling in spellings:
            candidates[spelling] = path
    # One dpkg call: it answers "package: path" for the paths it knows.
    r = subprocess.run(["dpkg", "-S", *sorted(candidates)], capture_output=True, text=True)
    owners = {}
    for line in r.stdout.splitlines():
        package, _, owned = line.partition(": ")
        if owned in candidates:
            owners[candidates[owned]] = package.split(":")[0].strip()
    return owners


def depends_closure(packages):
    r = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
                        "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances",
                        *packages], capture_output=True, text=True, check=True)
    return {line.strip() for line in r.stdout.splitlines()
            if line and not line.startswith(" ") and not line.startswith("<")}


def linked_libraries():
    """{soname: path} of every library the binary loads (ldd: direct and indirect)."""
    assert os.path.exists(LAGWATCH_BIN), "build lagwatch first (scripts/build): %s" % LAGWATCH_BIN
    out = subprocess.run(["ldd", LAGWATCH_BIN], capture_output=True, text=True, check=True).stdout
    libs = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (\S+)", line)
        if m:
            libs[m.group(1)] = m.group(2)
    return libs


def needed_libraries():
    out = subprocess.run(["readelf", "-d", LAGWATCH_BIN], capture_output=True, text=True,
                         check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]", out)


def test_runtime_stage_provides_every_linked_library(runtime):
    if "libasan" in " ".join(linked_libraries()):
        pytest.skip("%s is a sanitizer build; the image builds without" % LAGWATCH_BIN)
    installed = set(apt_installed(runtime))
    closure = depends_closure(sorted(installed | BASE_IMAGE_PACKAGES))
    libs = linked_libraries()
    needed = needed_libraries()
    owners = dpkg_owners(libs.values())
    unowned, direct_missing, indirect_missing = [], [], []
    for soname, path in sorted(libs.items()):
        owner = owners.get(path)
        if owner is None:
            unowned.append(path)
        elif soname in needed:
            # What lagwatch links itself is named in the Dockerfile, not left to chance.
            if owner not in installed | BASE_IMAGE_PACKAGES:
                direct_missing.append("%s (%s)" % (soname, owner))
        elif owner not in closure:
            indirect_missing.append("%s (%s)" % (soname, owner))
    assert not unowned, "no Debian package owns %s" % unowned
    assert not direct_missing, (
        "the runtime stage does not install the packages of libraries lagwatch links: %s "
        "(it installs %s)" % (direct_missing, sorted(installed)))
    assert not indirect_missing, (
        "libraries lagwatch loads indirectly that no installed package depends on: %s"
        % indirect_missing)


def test_runtime_stage_installs_no_development_packages(runtime):
    dev = [p for p in apt_installed(runtime) if p.endswith("-dev")]
    assert not dev, "the runtime image should carry only shared libraries: %s" % dev


def dockerignore_patterns():
    patterns = []
    with open(DOCKERIGNORE) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                patterns.append(line.lstrip("/"))
    return patterns


def ignored(path, patterns):
    """Whether .dockerignore excludes `path` (relative to the context) or a parent of it."""
    parts = path.split("/")
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        p = pattern[1:] if negate else pattern
        for n in range(1, len(parts) + 1):
            prefix = "/".join(parts[:n])
            if fnmatch.fnmatch(prefix, p) or (p.startswith("**/") and fnmatch.fnmatch(
                    prefix.split("/")[-1], p[3:])):
                result = not negate
    return result


def test_dockerignore_keeps_sources_out_of_the_way():
    patterns = dockerignore_patterns()
    for path in [".git", "build", "build-asan", ".pytest_cache", "tests/integration/__pycache__"]:
        assert ignored(path, patterns), "%s should be in .dockerignore" % path
    for path in ["src/main.cpp", "CMakeLists.txt", "scripts/setup", "scripts/build",
                 "collectors/register_builtin.cpp", "tests/unit", "packaging/lagwatch.toml"]:
        assert not ignored(path, patterns), "%s is needed in the build context" % path


def test_every_copy_source_exists_and_is_in_the_context(stages):
    patterns = dockerignore_patterns()
    stage_names = [s[0] for s in stages]
    for stage in stages:
        for copy in instructions(stage, "COPY"):
            words = copy.args.split()
            flags = [w for w in words if w.startswith("--")]
            sources = [w for w in words if not w.startswith("--")][:-1]
            assert sources, copy
            source_stage = [f.split("=", 1)[1] for f in flags if f.startswith("--from=")]
            if source_stage:
                assert source_stage[0] in stage_names, "%r: no stage %s" % (copy, source_stage[0])
                producer = stages[stage_names.index(source_stage[0])]
                runs = " ".join(i.args for i in instructions(producer, "RUN"))
                for s in sources:
                    assert s in runs, "%r: stage %s never writes %s" % (copy, producer[0], s)
                continue
            for s in sources:
                if s == ".":
                    continue
                assert os.path.exists(os.path.join(ROOT, s)), "%r: %s does not exist" % (copy, s)
                assert not ignored(s, patterns), "%r: .dockerignore excludes %s" % (copy, s)


def test_every_script_run_exists_and_is_executable(stages):
    found = []
    for stage in stages:
        for run in instructions(stage, "RUN"):
            for script in re.findall(r"(?<![\w/])(scripts/[\w./-]+)", run.args):
                found.append(script)
                path = os.path.join(ROOT, script)
                assert os.path.isfile(path), "%r: %s does not exist" % (run, script)
                assert os.access(path, os.X_OK), "%r: %s is not executable" % (run, script)
    assert "scripts/setup" in found and "scripts/build" in found, found


def default_listen_port():
    with open(os.path.join(ROOT, "src", "config.h")) as f:
        m = re.search(r'std::string listen = "[^"]*:(\d+)"', f.read())
    assert m, "no default listen address in src/config.h"
    return int(m.group(1))


def test_runtime_contract(runtime):
    port = default_listen_port()
    exposed = [w for e in instructions(runtime, "EXPOSE") for w in e.args.split()]
    assert str(port) in exposed, "EXPOSE %s, lagwatch listens on %d by default" % (exposed, port)

    [health] = instructions(runtime, "HEALTHCHECK")
    assert "/-/healthy" in health.args and ":%d/" % port in health.args, health
    tool = re.search(r'CMD \["([^"]+)"', health.args)
    assert tool, "HEALTHCHECK should use the exec form: %r" % health
    assert tool.group(1) in apt_installed(runtime), (
        "the health check runs %s, which the runtime stage does not install" % tool.group(1))

    [entrypoint] = instructions(runtime, "ENTRYPOINT")
    assert entrypoint.exec_form() == ["/usr/bin/lagwatch"], entrypoint
    assert any(c.args.split()[-1] == "/usr/bin/lagwatch" for c in instructions(runtime, "COPY")), \
        "nothing copies the binary to /usr/bin/lagwatch"
    [cmd] = instructions(runtime, "CMD")
    assert cmd.exec_form() == ["--config", "/etc/lagwatch/lagwatch.toml"], cmd

    [user] = instructions(runtime, "USER")
    uid = user.args.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "USER should be a numeric non-root uid: %r" % user
    runs = " ".join(i.args for i in instructions(runtime, "RUN"))
    assert re.search(r"useradd\b.*--uid %s\b" % uid, runs), "no user %s is created" % uid


# ---- systemd ----------------------------------------------------------------------------

def parse_unit(path=UNIT):
    """{section: [(key, value)]}, keeping repeated keys."""
    sections, current = {}, None
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                assert line.endswith("]"), "%s:%d: %r" % (path, n, line)
                current = line[1:-1]
                sections.setdefault(current, [])
                continue
            assert current and "=" in line, "%s:%d: not key=value: %r" % (path, n, line)
            key, _, value = line.partition("=")
            sections[current].append((key.strip(), value.strip()))
    return sections


def test_systemd_unit_is_hardened():
    unit = parse_unit()
    service = unit["Service"]
    values = {}
    for k, v in service:
        values.setdefault(k, []).append(v)
    expect = {
        "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "StateDirectory": "lagwatch",
        "Restart": "on-failure", "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    }
    for key, value in expect.items():
        assert values.get(key, [None])[-1] == value, "%s=%s expected, got %s" % (
            key, value, values.get(key))
    assert values.get("DynamicUser") == ["yes"] or values.get("User") == ["lagwatch"], values
    assert values["ExecStart"] == ["/usr/bin/lagwatch --config /etc/lagwatch/lagwatch.toml"]
    assert "/bin/kill -HUP $MAINPID" in values["ExecReload"], values["ExecReload"]
    assert unit["Install"] == [("WantedBy", "multi-user.target")]


def verify_copy(tmp_path):
    """The unit with /usr/bin/lagwatch pointing at a binary that exists here."""
    binary = LAGWATCH_BIN if os.access(LAGWATCH_BIN, os.X_OK) else shutil.which("true")
    with open(UNIT) as f:
        text = f.read().replace("/usr/bin/lagwatch", binary)
    copy = tmp_path / "lagwatch.service"
    copy.write_text(text)
    return copy


def test_systemd_analyze_verify_is_silent(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd); the unit was "
                    "only parsed, by test_systemd_unit_is_hardened")
    r = subprocess.run(["systemd-analyze", "verify", str(verify_copy(tmp_path))],
                       capture_output=True, text=True)
    # verify exits 0 on many mistakes (an unknown key or a bad value is "ignoring"), so any
    # output at all is a failure.
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), (
        "systemd-analyze verify (%d):\n%s%s" % (r.returncode, r.stdout, r.stderr))


def test_systemd_security_exposure_is_low(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                        str(verify_copy(tmp_path))], capture_output=True, text=True)
    m = re.search(r"Overall exposure level for \S+: ([\d.]+)", r.stdout + r.stderr)
    if m is None:
        pytest.skip("this systemd-analyze has no offline security analysis: %s" % r.stderr[:200])
    assert float(m.group(1)) <= 2.0, r.stdout[-2000:]


def test_example_config_passes_check_config():
    env = dict(os.environ, LAGWATCH_ORDERS_PASSWORD="x", LAGWATCH_CATALOG_PASSWORD="y")
    r = subprocess.run([LAGWATCH_BIN, "--check-config", EXAMPLE_CONFIG], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 0, r.stderr


# ---- Kubernetes -------------------------------------------------------------------------

def load_manifests(name):
    with open(os.path.join(K8S, name)) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    for d in docs:
        assert {"apiVersion", "kind", "metadata"} <= d.keys(), "%s: %r" % (name, d)
        assert d["metadata"].get("name"), "%s: a %s without a name" % (name, d["kind"])
    return docs


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


@pytest.fixture(scope="module")
def secret():
    [s] = by_kind(load_manifests("secret.yaml"), "Secret")
    return s


def dockerfile_facts():
    runtime = parse_dockerfile()[-1]
    [cmd] = instructions(runtime, "CMD")
    [user] = instructions(runtime, "USER")
    ports = [int(w) for e in instructions(runtime, "EXPOSE") for w in e.args.split()]
    return {"config": cmd.exec_form()[-1], "uid": int(user.args.split(":")[0]), "ports": ports}


def check_workload(workload, docs, secret):
    """Consistency of one Deployment/StatefulSet with its file and the Dockerfile; returns
    (configmap data text of the main container's config, secret mount path)."""
    facts = dockerfile_facts()
    name = workload["metadata"]["name"]
    spec = workload["spec"]
    template = spec["template"]
    labels = template["metadata"]["labels"]
    selector = spec["selector"]["matchLabels"]
    assert selector.items() <= labels.items(), "%s: selector %s does not match labels %s" % (
        name, selector, labels)

    annotations = template["metadata"].get("annotations", {})
    assert annotations.get("prometheus.io/scrape") == "true", "%s: %s" % (name, annotations)
    assert annotations.get("prometheus.io/path") == "/metrics", annotations

    pod = template["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == facts["uid"], (
        "%s runs as %s, the image's user is %s" % (name, pod["securityContext"]["runAsUser"],
                                                   facts["uid"]))
    [main] = [c for c in pod["containers"] if c["name"] == "lagwatch"]
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert ports["http"] in facts["ports"], "containerPort %s not EXPOSEd %s" % (
        ports["http"], facts["ports"])
    assert int(annotations["prometheus.io/port"]) == ports["http"]
    for probe, path in (("readinessProbe", "/-/ready"), ("livenessProbe", "/-/healthy")):
        assert main[probe]["httpGet"]["path"] == path, (name, probe)
        assert main[probe]["httpGet"]["port"] in ports, (name, probe)
    assert main["args"] == ["--config", facts["config"]], (
        "%s: args %s, the image's CMD uses %s" % (name, main["args"], facts["config"]))
    images = {c["image"] for c in pod["containers"] + pod.get("initContainers", [])}
    assert len(images) == 1, "%s: several images %s" % (name, images)

    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
    config_dir = os.path.dirname(facts["config"])
    assert config_dir in mounts, "%s: nothing mounted at %s" % (name, config_dir)
    for c in pod["containers"] + pod.get("initContainers", []):
        for m in c["volumeMounts"]:
            assert m["name"] in volumes, "%s/%s mounts unknown volume %s" % (name, c["name"], m)
    secret_volumes = [v for v in volumes.values() if "secret" in v]
    assert [v["secret"]["secretName"] for v in secret_volumes] == [secret["metadata"]["name"]]
    [secret_mount] = [p for p, v in mounts.items() if "secret" in volumes[v]]
    configmaps = {d["metadata"]["name"]: d for d in by_kind(docs, "ConfigMap")}
    for v in volumes.values():
        if "configMap" in v:
            assert v["configMap"]["name"] in configmaps, "%s: no ConfigMap %s" % (name, v)

    services = [s for s in by_kind(docs, "Service") if s["spec"]["selector"].items() <= labels.items()]
    assert len(services) == 1, "%s: %d Services select its pods" % (name, len(services))
    for p in services[0]["spec"]["ports"]:
        assert p["targetPort"] in ports or p["targetPort"] in ports.values(), p
        assert p["port"] == ports["http"], p
    return services[0], configmaps, secret_mount


def check_config_text(text, secret, secret_mount, tmp_path, name):
    """Every password_file is a key of the Secret under its mount; the config passes
    lagwatch --check-config (with the Secret's files written under tmp_path)."""
    files = re.findall(r'password_file = "([^"]+)"', text)
    assert files, "%s: no password_file in the config" % name
    keys = secret.get("stringData", {}).keys() | secret.get("data", {}).keys()
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(exist_ok=True)
    for path in files:
        assert os.path.dirname(path) == secret_mount, "%s: %s is not under %s" % (
            name, path, secret_mount)
        assert os.path.basename(path) in keys, "%s: the Secret has no key %s" % (name, path)
    for key in keys:
        (secrets_dir / key).write_text("placeholder\n")
    config = tmp_path / (name + ".toml")
    config.write_text(text.replace(secret_mount + "/", str(secrets_dir) + "/"))
    r = subprocess.run([LAGWATCH_BIN, "--check-config", str(config)], capture_output=True,
                       text=True)
    assert r.returncode == 0, "%s: %s" % (name, r.stderr)
    return text


def listen_port(text):
    return int(re.search(r'^listen = "[^"]*:(\d+)"', text, re.M).group(1))


def test_kubernetes_deployment(secret, tmp_path):
    docs = load_manifests("deployment.yaml")
    assert {d["kind"] for d in docs} == {"ConfigMap", "Deployment", "Service"}, docs
    [deployment] = by_kind(docs, "Deployment")
    service, configmaps, secret_mount = check_workload(deployment, docs, secret)
    [config_volume] = [v for v in deployment["spec"]["template"]["spec"]["volumes"]
                       if "configMap" in v]
    data = configmaps[config_volume["configMap"]["name"]]["data"]
    facts = dockerfile_facts()
    text = data[os.path.basename(facts["config"])]
    assert listen_port(text) in facts["ports"]
    check_config_text(text, secret, secret_mount, tmp_path, "deployment")


def test_kubernetes_sharded_statefulset(secret, tmp_path):
    docs = load_manifests("sharded.yaml")
    assert {d["kind"] for d in docs} == {"ConfigMap", "StatefulSet", "Service"}, docs
    [sts] = by_kind(docs, "StatefulSet")
    service, configmaps, secret_mount = check_workload(sts, docs, secret)
    assert service["metadata"]["name"] == sts["spec"]["serviceName"], "serviceName mismatch"
    assert service["spec"].get("clusterIP") == "None", "the StatefulSet's Service is not headless"
    replicas = sts["spec"]["replicas"]
    assert replicas == 2, replicas

    pod = sts["spec"]["template"]["spec"]
    [init] = pod["initContainers"]
    [template_volume] = [v for v in pod["volumes"] if "configMap" in v]
    [template_key] = configmaps[template_volume["configMap"]["name"]]["data"].keys()
    template = configmaps[template_volume["configMap"]["name"]]["data"][template_key]
    m = re.search(r'^shard = "@ORDINAL@/(\d+)"$', template, re.M)
    assert m, "the template has no shard = \"@ORDINAL@/n\" line"
    assert int(m.group(1)) == replicas, (
        "shard count %s in the config, %d replicas" % (m.group(1), replicas))
    facts = dockerfile_facts()
    assert listen_port(template) in facts["ports"]

    # Run the init container's script here, with its paths mapped into tmp_path.
    init_mounts = {m["name"]: m["mountPath"] for m in init["volumeMounts"]}
    main_mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    config_volume = [n for n, p in main_mounts.items() if p == os.path.dirname(facts["config"])][0]
    assert init_mounts[config_volume] == os.path.dirname(facts["config"]), init_mounts
    # The Secret's keys and paths, and the config itself, as shard 0 would get it.
    check_config_text(template.replace("@ORDINAL@", "0"), secret, secret_mount, tmp_path,
                      "shard-template")
    secrets_dir = tmp_path / "secrets"  # written by check_config_text

    # Run the init container's script here, with its mounts mapped into tmp_path (the secret
    # paths inside the template too, so its --check-config can read them).
    template_dir = tmp_path / "template"
    template_dir.mkdir()
    (template_dir / template_key).write_text(
        template.replace(secret_mount + "/", str(secrets_dir) + "/"))
    script = init["args"][0]
    assert init["command"][:2] == ["/bin/sh", "-c"], init["command"]
    for ordinal in range(replicas):
        out_dir = tmp_path / ("config-%d" % ordinal)
        out_dir.mkdir()
        mapped = (script.replace(init_mounts[template_volume["name"]], str(template_dir))
                  .replace(os.path.dirname(facts["config"]) + "/", str(out_dir) + "/")
                  .replace("/usr/bin/lagwatch", LAGWATCH_BIN))
        pod_name = "%s-%d" % (sts["metadata"]["name"], ordinal)
        r = subprocess.run(["/bin/sh", "-c", mapped], capture_output=True, text=True,
                           env=dict(os.environ, POD_NAME=pod_name))
        assert r.returncode == 0, "init script for %s failed:\n%s%s" % (pod_name, r.stdout,
                                                                       r.stderr)
        text = (out_dir / os.path.basename(facts["config"])).read_text()
        assert re.search(r'^shard = "%d/%d"$' % (ordinal, replicas), text, re.M), text[:300]
        assert 'shard = "%d/%d"' % (ordinal, replicas) in r.stdout, r.stdout

    bad = dict(os.environ, POD_NAME="lagwatch-shard")
    r = subprocess.run(["/bin/sh", "-c", script.replace("/etc/lagwatch", str(tmp_path / "x"))],
                       capture_output=True, text=True, env=bad)
    assert r.returncode != 0 and "no ordinal" in r.stderr, (r.returncode, r.stderr)


def test_kubernetes_secret_is_a_placeholder(secret):
    # Examples never carry a real credential.
    for key, value in secret["stringData"].items():
        assert value == "CHANGE-ME", "%s should be a placeholder" % key
