"""The deployment files are consistent with the code: Dockerfile, docker-compose.yml, the
Kubernetes manifests (deploy/k8s), the Grafana dashboard and the Prometheus rules.

Every command they run must be a real `covidnews` subcommand with real options (parsed by click),
every Celery invocation must use the app and queues that exist, every COVIDNEWS_* variable must be
a real setting, every referenced file must exist, and every metric charted or alerted on must be
defined by the code. Fast: nothing is built or run.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from covidnews.cli import COMMANDS, main
from covidnews.settings import Settings, env_name
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DASHBOARD = DEPLOY / "grafana" / "covidnews.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
OPERATIONS = ROOT / "docs" / "operations.md"
ENV_EXAMPLE = ROOT / ".env.example"

SETTINGS_VARS = {env_name(field) for field in Settings.model_fields}
CELERY_APP = "covidnews.celery"

# The metrics the dashboard must chart (API: api/ops.py; crawler, workers: covidnews/metrics.py).
CHARTED_METRICS = frozenset(
    {
        "covidnews_http_requests_total",
        "covidnews_http_request_duration_seconds",
        "covidnews_http_rate_limited_total",
        "covidnews_search_seconds",
        "covidnews_pages_crawled_total",
        "covidnews_articles_processed_total",
        "covidnews_queue_depth",
        "covidnews_task_seconds",
        "covidnews_task_failures_total",
        "covidnews_index_lag_seconds",
        "covidnews_index_pending_changes",
        "covidnews_index_documents",
    }
)


# --- loading ------------------------------------------------------------------------------------


def k8s_files() -> list[Path]:
    return sorted(K8S.rglob("*.yaml"))


def k8s_documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in k8s_files():
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc is not None:
                yield path, doc


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def app_services() -> dict[str, dict[str, Any]]:
    """Compose services running the covidnews image (built from the Dockerfile)."""
    return {
        name: svc
        for name, svc in compose()["services"].items()
        if "build" in svc or "covidnews" in str(svc.get("image", "")).split(":")[0]
    }


def dockerfile_default(instruction: str) -> list[str]:
    """The exec-form ENTRYPOINT or CMD of the Dockerfile's final stage."""
    found: list[str] = []
    for line in _dockerfile_instructions():
        if line.upper().startswith(instruction + " "):
            value = json.loads(line[len(instruction) :].strip())
            assert isinstance(value, list), f"{instruction} must use the exec (JSON) form"
            found = [str(v) for v in value]
    return found


def _dockerfile_instructions() -> list[str]:
    """Instructions with continuation lines joined, comments removed."""
    out: list[str] = []
    current = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        out.append(current + line)
        current = ""
    if current:
        out.append(current)
    return out


def compose_interpolate(value: str) -> str:
    """What compose passes to the container: ${VAR:-default} → default, $$ → $."""
    value = value.replace("$$", "\0")
    value = re.sub(
        r"\$\{(\w+)(?::?([-?])([^}]*))?\}",
        lambda m: m.group(3) if m.group(2) == "-" else "x",
        value,
    )
    return value.replace("\0", "$")


# --- command lines --------------------------------------------------------------------------------


def shell_invocations(script: str) -> Iterator[list[str]]:
    """`covidnews …` and `celery …` command lines inside a shell script."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)
    separators = {";", "&&", "||", "|", "&", ">", ">&", "<", "(", ")", ";;"}
    for i, token in enumerate(tokens):
        if token in {"covidnews", "celery"}:
            argv = [token]
            for tok in tokens[i + 1 :]:
                if tok in separators or tok.startswith(">"):
                    break
                argv.append(tok)
            yield argv


def expand(argv: list[str]) -> Iterator[list[str]]:
    """The program invocations in an argv: itself, or those of a `sh -c SCRIPT`."""
    if len(argv) >= 3 and Path(argv[0]).name in {"sh", "bash"} and argv[1] == "-c":
        yield from shell_invocations(argv[2])
    elif argv:
        yield argv


def compose_invocations() -> Iterator[tuple[str, list[str]]]:
    entry_default = dockerfile_default("ENTRYPOINT")
    cmd_default = dockerfile_default("CMD")
    for name, svc in app_services().items():
        entry = svc.get("entrypoint", entry_default)
        command = svc.get("command", cmd_default if "entrypoint" not in svc else [])
        entry = shlex.split(entry) if isinstance(entry, str) else list(entry)
        command = shlex.split(command) if isinstance(command, str) else list(command)
        argv = [compose_interpolate(str(a)) for a in entry + command]
        for inv in expand(argv):
            yield f"compose {name}", inv
        test = (svc.get("healthcheck") or {}).get("test")
        if isinstance(test, list) and test and test[0] in {"CMD", "CMD-SHELL"}:
            if test[0] == "CMD-SHELL":
                script = compose_interpolate(str(test[1]))
                for inv in shell_invocations(script):
                    yield f"compose {name} healthcheck", inv
            else:
                yield f"compose {name} healthcheck", [compose_interpolate(str(a)) for a in test[1:]]


def pod_specs(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    kind = doc.get("kind")
    spec = doc.get("spec") or {}
    template: dict[str, Any] | None = None
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}:
        template = spec.get("template")  # absent in an overlay's strategic-merge patch
    elif kind == "CronJob":
        template = spec.get("jobTemplate", {}).get("spec", {}).get("template")
    if template:
        yield template["spec"]


def containers(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for spec in pod_specs(doc):
        yield from spec.get("initContainers", [])
        yield from spec.get("containers", [])


def k8s_invocations() -> Iterator[tuple[str, list[str]]]:
    entry_default = dockerfile_default("ENTRYPOINT")
    cmd_default = dockerfile_default("CMD")
    for path, doc in k8s_documents():
        for c in containers(doc):
            where = f"{path.relative_to(ROOT)} {doc['metadata']['name']}/{c['name']}"
            if c.get("image") != "covidnews":
                continue
            if "command" in c:
                argv = [*c["command"], *c.get("args", [])]
            else:
                argv = [*entry_default, *c.get("args", cmd_default)]
            yield from ((where, inv) for inv in expand([str(a) for a in argv]))
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                exec_ = (c.get(probe) or {}).get("exec")
                if exec_:
                    yield from (
                        (f"{where} {probe}", inv)
                        for inv in expand([str(a) for a in exec_["command"]])
                    )


ALL_INVOCATIONS = [*compose_invocations(), *k8s_invocations()]


def check_covidnews(args: list[str]) -> None:
    """Parse ARGS exactly as `covidnews ARGS` would (subcommands, options, values)."""
    assert args, "covidnews without a subcommand"
    assert args[0] in COMMANDS, f"not a covidnews command: {args[0]!r}"
    command: click.Command = main
    ctx = click.Context(main, info_name="covidnews")
    rest = list(args)
    while isinstance(command, click.Group):
        assert rest, f"{ctx.command_path}: a subcommand is required"
        name, rest = rest[0], rest[1:]
        sub = command.get_command(ctx, name)
        assert sub is not None, f"`{ctx.command_path} {name}`: no such subcommand"
        command = sub
        if isinstance(command, click.Group):
            ctx = click.Context(command, info_name=name, parent=ctx)
        else:
            command.make_context(name, rest, parent=ctx, resilient_parsing=False)


def check_celery(args: list[str]) -> None:
    from covidnews.celery import BOT_QUEUE, NLP_QUEUE

    assert args[:2] == ["-A", CELERY_APP] or args[:1] == [f"--app={CELERY_APP}"], (
        f"celery must be run with -A {CELERY_APP}: {args}"
    )
    rest = args[2:] if args[0] == "-A" else args[1:]
    assert rest, "celery without a subcommand"
    sub = rest[0]
    assert sub in {"worker", "beat", "inspect"}, f"unexpected celery subcommand {sub!r}"
    if sub == "worker":
        assert "-Q" in rest, "every worker names its queues (-Q)"
        queues = set(rest[rest.index("-Q") + 1].split(","))
        # no queue `index` any more: each API node follows the store into its own indexes
        assert queues <= {NLP_QUEUE, BOT_QUEUE}, f"unknown queues {queues}"
    if sub == "inspect":
        assert rest[1] == "ping", rest


def test_every_deployment_file_parses() -> None:
    assert compose()["services"]
    assert k8s_files(), "no Kubernetes manifests"
    documents = list(k8s_documents())
    kinds = {doc["kind"] for _, doc in documents}
    assert {
        "Deployment",
        "CronJob",
        "Job",
        "ConfigMap",
        "Secret",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "StatefulSet",
        "ScaledObject",
        "Kustomization",
        "Component",
    } <= kinds
    for path, doc in documents:
        assert "apiVersion" in doc and "kind" in doc, path
        if doc["kind"] not in {"Kustomization", "Component"}:
            assert doc.get("metadata", {}).get("name"), f"{path}: a {doc['kind']} without a name"
    json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]


def test_kustomizations_reference_existing_files() -> None:
    kustomizations = sorted(K8S.rglob("kustomization.yaml"))
    assert {p.parent.relative_to(K8S).as_posix() for p in kustomizations} >= {
        "base",
        "overlays/dev",
        "overlays/prod",
    }
    for path in kustomizations:
        k = yaml.safe_load(path.read_text(encoding="utf-8"))
        refs = [*k.get("resources", []), *k.get("components", [])]
        refs += [p["path"] for p in k.get("patches", []) if "path" in p]
        for ref in refs:
            target = (path.parent / ref).resolve()
            assert target.exists(), f"{path.relative_to(ROOT)}: {ref} does not exist"
            if target.is_dir():
                assert (target / "kustomization.yaml").exists(), f"{ref}: not a kustomization"
            else:
                assert list(yaml.safe_load_all(target.read_text(encoding="utf-8")))
    # every manifest in base is used
    base = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text(encoding="utf-8"))
    unused = {p.name for p in (K8S / "base").glob("*.yaml")} - {"kustomization.yaml"}
    assert unused == set(base["resources"]), "base manifests not listed (or listed but missing)"


def test_commands_found_everywhere() -> None:
    """The extraction below sees every service (so the following tests check something)."""
    where = {w.split(" ")[1] for w, _ in ALL_INVOCATIONS if w.startswith("compose")}
    assert {
        "migrate",
        "api",
        "nlp-worker",
        "beat",
        "bot-worker",
        "crawler",
    } <= where
    programs = [argv[:2] for _, argv in ALL_INVOCATIONS]
    for expected in (
        ["covidnews", "init"],
        ["covidnews", "serve"],
        ["covidnews", "crawl"],
        ["covidnews", "bot"],
    ):
        assert expected in programs, expected
    assert sum(1 for _, argv in ALL_INVOCATIONS if argv[0] == "celery") >= 8


@pytest.mark.parametrize(("where", "argv"), ALL_INVOCATIONS, ids=lambda v: str(v)[:60])
def test_commands_are_real(where: str, argv: list[str]) -> None:
    program, args = argv[0], argv[1:]
    assert program in {"covidnews", "celery", "python"}, f"{where}: unexpected program {argv}"
    try:
        if program == "covidnews":
            check_covidnews(args)
        elif program == "celery":
            check_celery(args)
    except click.ClickException as exc:
        pytest.fail(f"{where}: `{shlex.join(argv)}`: {exc.format_message()}")
    except AssertionError as exc:
        raise AssertionError(f"{where}: `{shlex.join(argv)}`: {exc}") from None


def test_command_checker_rejects_wrong_commands() -> None:
    """The checker itself: unknown subcommands, options and values are caught."""
    check_covidnews(["bot", "run-once", "--json"])
    check_covidnews(["models", "pull", "a/b", "--dest", "/x"])
    for bad in (
        ["nope"],
        ["bot", "run-twice"],
        ["serve", "--wrokers", "2"],
        ["serve", "--workers", "many"],
        ["crawl", "--run-id"],
    ):
        with pytest.raises((click.ClickException, AssertionError)):
            check_covidnews(bad)
    for bad in (
        ["-A", "other.app", "worker", "-Q", "nlp"],
        ["-A", CELERY_APP, "worker", "-Q", "nlpp"],
        ["-A", CELERY_APP, "worker", "-Q", "index", "-c", "1"],
        ["-A", CELERY_APP, "worker", "-Q", "nlp,index"],
    ):
        with pytest.raises(AssertionError):
            check_celery(bad)


def base_documents() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (doc["kind"], doc["metadata"]["name"]): doc
        for path, doc in k8s_documents()
        if path.parent == K8S / "base" and doc["kind"] != "Kustomization"
    }


def test_scheduled_and_singleton_services() -> None:
    docs = base_documents()
    beat = docs[("Deployment", "covidnews-beat")]
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"
    assert docs[("HorizontalPodAutoscaler", "covidnews-api")]["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": "covidnews-api",
    }
    assert ("PodDisruptionBudget", "covidnews-api") in docs
    scaled = docs[("ScaledObject", "covidnews-nlp-worker")]["spec"]
    assert scaled["scaleTargetRef"]["name"] == "covidnews-nlp-worker"
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "redis" and trigger["metadata"]["listName"] == "nlp"
    schedules = {
        name: doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"][:2]
        for (kind, name), doc in docs.items()
        if kind == "CronJob"
    }
    assert schedules["covidnews-bot"] == ["bot", "run-once"]
    assert schedules["covidnews-bot-digest"] == ["bot", "digest"]
    assert schedules["covidnews-crawler"] == ["crawl", "--run-id"]
    for (kind, name), doc in docs.items():
        if kind == "Service" and name in {"postgres", "redis"}:
            assert doc["spec"]["type"] == "ExternalName"

    services = compose()["services"]
    migrate_dep = {"condition": "service_completed_successfully"}
    for name, svc in app_services().items():
        deps = svc.get("depends_on", {})
        if name != "migrate":
            assert deps.get("migrate") == migrate_dep, f"{name} must wait for migrate"
        assert deps.get("postgres") == {"condition": "service_healthy"}, name
    for name in ("postgres", "redis", "api"):
        assert "test" in services[name]["healthcheck"], name
    assert "replicas" in services["nlp-worker"]["deploy"]


# --- indexes: every API node keeps its own, following the store -----------------------------------

BOOTSTRAP_BUDGET = 30 * 60  # seconds a new node may take to bootstrap before it counts as failed


def _duration(value: str | int) -> int:
    """A compose duration (`90s`, `30m`, `1h30m`) in seconds."""
    if isinstance(value, int):
        return value
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+)([hms])", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"unsupported duration {value!r}"
    return sum(int(n) * units[u] for n, u in parts)


def _compose_mounts(svc: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of a compose service's volumes, short or long syntax."""
    mounts = []
    for volume in svc.get("volumes", []):
        if isinstance(volume, dict):
            mounts.append((str(volume.get("source", "")), str(volume["target"])))
        else:
            source, target, *_ = str(volume).split(":")
            mounts.append((source, target))
    return mounts


def test_no_index_writer_anywhere() -> None:
    services = compose()["services"]
    assert not {name for name in services if "index" in name}, "compose: an index service"
    assert not {"index", "search"} & set(compose()["volumes"]), "compose: shared index volumes"
    for path, doc in k8s_documents():
        where = f"{path.relative_to(ROOT)} {doc['kind']}"
        meta = doc.get("metadata") or {}
        assert "index" not in meta.get("name", ""), f"{where} {meta.get('name')}"
        assert (meta.get("labels") or {}).get("app.kubernetes.io/component") != "index-writer"
        if doc["kind"] == "PersistentVolumeClaim":
            assert "ReadWriteMany" not in doc.get("spec", {}).get("accessModes", []), where
        for spec in pod_specs(doc):
            for volume in spec.get("volumes", []):
                claim = volume.get("persistentVolumeClaim", {}).get("claimName")
                assert claim is None, f"{where}: mounts the shared volume {claim}"
    prometheus = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    jobs = {job["job_name"] for job in prometheus["scrape_configs"]}
    assert jobs == {"covidnews-api", "covidnews-workers"}
    alerts = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    for rule in (r for g in alerts["groups"] for r in g["rules"]):
        assert "index-writer" not in rule["expr"] and 'queue="index"' not in rule["expr"], rule


def test_api_nodes_keep_their_own_indexes_on_kubernetes() -> None:
    docs = base_documents()
    assert ("Deployment", "covidnews-api") not in docs
    api = docs[("StatefulSet", "covidnews-api")]["spec"]
    assert api["podManagementPolicy"] == "Parallel"  # new pods bootstrap side by side
    (claim,) = api["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    pod = api["template"]["spec"]
    assert not pod.get("volumes"), "the API's only volume is its own claim"
    (container,) = pod["containers"]
    data_dir = docs[("ConfigMap", "covidnews-config")]["data"]["COVIDNEWS_DATA_DIR"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts == {data_dir: claim["metadata"]["name"]}
    # its governing headless Service selects the same pods
    headless = docs[("Service", api["serviceName"])]["spec"]
    assert headless["clusterIP"] == "None"
    assert headless["selector"] == api["selector"]["matchLabels"]
    assert docs[("Service", "covidnews-api")]["spec"].get("clusterIP") != "None"
    # serve runs the follower (the default)
    assert container["args"][0] == "serve" and "--no-follow" not in container["args"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # started = bootstrapped and caught up (/readyz), with a budget for a big archive
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == "/readyz"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= BOOTSTRAP_BUDGET
    assert "COVIDNEWS_INDEX_MAX_LAG" in docs[("ConfigMap", "covidnews-config")]["data"]
    # the overlays patch what the base defines (no stale Deployment/PVC patches)
    for path, doc in k8s_documents():
        if path.parent == K8S / "base" or doc["kind"] in {"Kustomization", "Component"}:
            continue
        if doc["kind"] in {"Deployment", "StatefulSet", "PersistentVolumeClaim"}:
            assert (doc["kind"], doc["metadata"]["name"]) in docs, f"{path}: patches nothing"
    for path in K8S.rglob("kustomization.yaml"):
        for patch in yaml.safe_load(path.read_text(encoding="utf-8")).get("patches", []):
            target = patch.get("target") or {}
            if target and not re.search(r"[.*(|]", target.get("name", "")):
                assert (target["kind"], target["name"]) in docs, f"{path}: {target}"


def test_api_node_keeps_its_own_indexes_in_compose() -> None:
    services = compose()["services"]
    api = services["api"]
    assert api["environment"]["COVIDNEWS_DATA_DIR"] == "/data"
    (mount,) = _compose_mounts(api)  # nothing else under /data: no shared index directories
    source, target = mount
    assert target == "/data" and source in compose()["volumes"]
    for name, svc in services.items():
        if name != "api":
            assert source not in {s for s, _ in _compose_mounts(svc)}, f"{name} mounts {source}"
    assert "--no-follow" not in api["command"]
    healthcheck = api["healthcheck"]
    assert "/readyz" in " ".join(healthcheck["test"])
    assert _duration(healthcheck["start_period"]) >= BOOTSTRAP_BUDGET


def test_every_routed_queue_has_consumers() -> None:
    """Compose and Kubernetes run workers for exactly the queues the Celery app sends to."""
    from covidnews.celery import app

    routes = app.conf.task_routes or {}
    assert isinstance(routes, dict)
    routed = {app.conf.task_default_queue} | {r["queue"] for r in routes.values()}
    routed |= {e["options"]["queue"] for e in app.conf.beat_schedule.values()}
    for platform in ("compose", "deploy/k8s"):
        consumed: set[str] = set()
        for where, argv in ALL_INVOCATIONS:
            if where.startswith(platform) and argv[0] == "celery" and "worker" in argv:
                consumed |= set(argv[argv.index("-Q") + 1].split(","))
        assert consumed == routed, f"{platform}: consumed {consumed}, routed {routed}"


def test_index_follower_commands_exist(tmp_path: Path) -> None:
    """The commands and setting the manifests (and their comments) rely on."""
    snapshot = tmp_path / "snapshot"
    check_covidnews(["serve", "--no-follow"])
    check_covidnews(["follow", "--once"])
    check_covidnews(["index", "snapshot", str(snapshot)])
    snapshot.write_bytes(b"")
    check_covidnews(["index", "restore", str(snapshot)])
    assert "COVIDNEWS_INDEX_MAX_LAG" in SETTINGS_VARS


# --- environment variables --------------------------------------------------------------------------


def _set_variables() -> Iterator[tuple[str, str]]:
    for name, svc in compose()["services"].items():
        env = svc.get("environment") or {}
        items = env if isinstance(env, dict) else dict(e.split("=", 1) for e in env)
        for key in items:
            yield f"compose {name}", key
    for path, doc in k8s_documents():
        where = str(path.relative_to(ROOT))
        if doc["kind"] in {"ConfigMap", "Secret"}:
            for key in [*(doc.get("data") or {}), *(doc.get("stringData") or {})]:
                yield where, key
        if doc["kind"] == "Kustomization":
            for gen in [*doc.get("configMapGenerator", []), *doc.get("secretGenerator", [])]:
                for literal in gen.get("literals", []):
                    yield where, literal.split("=", 1)[0]
        for c in containers(doc):
            for e in c.get("env", []):
                yield where, e["name"]
    for line in _dockerfile_instructions():
        if line.upper().startswith("ENV "):
            for m in re.finditer(r"(\w+)=", line):
                yield "Dockerfile", m.group(1)
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        m = re.match(r"#?\s*([A-Z_][A-Z0-9_]*)=", line)
        if m:
            yield ".env.example", m.group(1)


def test_every_covidnews_variable_is_a_setting() -> None:
    seen = [(where, key) for where, key in _set_variables() if key.startswith("COVIDNEWS_")]
    assert len(seen) > 40
    wrong = sorted({f"{where}: {key}" for where, key in seen if key not in SETTINGS_VARS})
    assert not wrong, "not settings (covidnews/settings.py):\n" + "\n".join(wrong)
    # and the documentation names only real ones
    for doc in (OPERATIONS, ROOT / "README.md"):
        text = doc.read_text(encoding="utf-8")
        named = set(re.findall(r"(COVIDNEWS_[A-Z0-9_]*[A-Z0-9])(?![A-Z0-9_])", text))
        families = set(re.findall(r"(COVIDNEWS_[A-Z0-9_]*[A-Z0-9])_\*", text))  # BOT_* etc.
        unknown = {n for n in named - SETTINGS_VARS if not n.startswith("COVIDNEWS_TEST_")}
        unknown |= {f for f in families if not any(v.startswith(f + "_") for v in SETTINGS_VARS)}
        assert not unknown, f"{doc.name} names unknown settings: {sorted(unknown)}"


def test_secrets_are_not_inlined() -> None:
    env = app_services()["migrate"]["environment"]
    assert "${POSTGRES_PASSWORD:?" in env["COVIDNEWS_DATABASE_URL"]
    assert compose()["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith(
        "${POSTGRES_PASSWORD:?"
    )
    bot_env = compose()["services"]["bot-worker"]["environment"]
    for key, value in bot_env.items():
        if "TOKEN" in key or "PASSWORD" in key or "SECRET" in key or key.endswith("API_KEY"):
            assert re.fullmatch(r"\$\{\w+:-\}", value), f"{key} must come from the environment"
    for path, doc in k8s_documents():
        if doc["kind"] == "ConfigMap":
            for key, value in (doc.get("data") or {}).items():
                assert not re.search(r"PASSWORD|TOKEN|SECRET|DATABASE_URL|BROKER_URL", key), key
                assert "://" not in value or "@" not in value, f"{path}: {key} holds credentials"
        if doc["kind"] == "Secret":
            values = doc.get("stringData") or {}
            assert all(v in {"", "CHANGE-ME"} or "CHANGE-ME" in v for v in values.values())


# --- files -----------------------------------------------------------------------------------------


def test_referenced_files_exist() -> None:
    for name, svc in compose()["services"].items():
        build = svc.get("build")
        if build:
            context = ROOT / build.get("context", ".")
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name
        for volume in svc.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: {source} missing"
            else:
                assert source in compose()["volumes"], f"{name}: undeclared volume {source}"
    for line in _dockerfile_instructions():
        if line.upper().startswith("COPY ") and "--from=" not in line:
            *sources, _dest = line.split()[1:]
            for source in sources:
                if not source.startswith("--"):
                    assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
    prometheus = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    for rule_file in prometheus["rule_files"]:
        assert (PROMETHEUS.parent / rule_file).is_file()
    for doc in (OPERATIONS, ROOT / "README.md", ROOT / "docs" / "architecture.md"):
        text = doc.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+)[^)]*\)", text):
            if "://" in target:
                continue
            assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"
    ops = OPERATIONS.read_text(encoding="utf-8")
    for path in re.findall(r"`((?:deploy|docs)/[\w./-]+\.(?:ya?ml|json|md))`", ops):
        assert (ROOT / path).exists(), f"operations.md names missing {path}"


def test_dockerfile() -> None:
    instructions = _dockerfile_instructions()
    stages = [line for line in instructions if line.upper().startswith("FROM ")]
    assert len(stages) >= 2, "multi-stage build"
    final = instructions[instructions.index(stages[-1]) :]
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users, "the runtime stage sets a USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, "the image must not run as root"
    healthchecks = [line for line in final if line.upper().startswith("HEALTHCHECK ")]
    assert healthchecks and "NONE" not in healthchecks[-1].upper()
    assert "/healthz" in healthchecks[-1]
    assert dockerfile_default("ENTRYPOINT") == ["covidnews"]
    check_covidnews(dockerfile_default("CMD"))
    text = "\n".join(final)
    assert "apertium-eng-spa" in text
    assert "COVIDNEWS_DATA_DIR=/data" in text
    assert re.search(r'^VOLUME \["/data"\]', text, re.M)
    extras = [line for line in instructions if line.startswith("ARG EXTRAS=")]
    assert extras and all(line == "ARG EXTRAS=crawler,nlp,api,bot" for line in extras)
    assert "torch" not in text.lower().replace("pytorch.org", "")  # CPU torch only via ml extra


@pytest.mark.slow
def test_wheel_carries_every_data_file(tmp_path: Path) -> None:
    """The image installs the wheel: every non-Python file of the packages must be in it."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("covidnews-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    listed = subprocess.run(
        [
            "git",
            "ls-files",
            "--cached",
            "--others",
            "--exclude-standard",
            "--",
            "covidnews",
            "crawler",
            "nlp_worker",
            "api",
            "bot",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.split()
    wanted = {
        name
        for name in listed
        if not name.endswith((".py", ".pyc"))
        and "/migrations/versions/" not in name
        and (ROOT / name).is_file()
    }
    assert wanted, "no data files found"
    missing = sorted(wanted - names)
    assert not missing, f"not in the wheel (pyproject.toml package-data): {missing}"


# --- metrics ---------------------------------------------------------------------------------------

_METRIC = re.compile(r"\bcovidnews_[a-z0-9_]*[a-z0-9]")


def _series_base(name: str) -> str:
    return re.sub(r"_(bucket|sum|count|created)$", "", name)


def defined_metrics() -> set[str]:
    """Metric names the code registers (string literals in the packages, tests excluded)."""
    names: set[str] = set()
    for package in ("covidnews", "crawler", "nlp_worker", "api", "bot"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            names.update(re.findall(r"[\"'](covidnews_[a-z0-9_]+)[\"']", text))
    # prometheus_client adds _total to counters: either spelling defines the series
    return names | {n + "_total" for n in names} | {n.removesuffix("_total") for n in names}


def queried_metrics() -> dict[str, set[str]]:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs: list[str] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for p in panels:
            exprs.extend(t["expr"] for t in p.get("targets", []))
            walk(p.get("panels", []))

    walk(dash["panels"])
    alerts = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    rule_exprs = [r["expr"] for g in alerts["groups"] for r in g["rules"]]
    return {
        "dashboard": {_series_base(m) for e in exprs for m in _METRIC.findall(e)},
        "alerts": {_series_base(m) for e in rule_exprs for m in _METRIC.findall(e)},
    }


def test_dashboard_and_alerts_cover_the_metrics() -> None:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dash["uid"] and dash["title"] and dash["panels"]
    queried = queried_metrics()
    assert queried["dashboard"] >= CHARTED_METRICS
    assert {
        "covidnews_http_requests_total",
        "covidnews_queue_depth",
        "covidnews_task_failures_total",
        "covidnews_pages_crawled_total",
        "covidnews_index_lag_seconds",
    } <= queried["alerts"]
    alerts = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    names = {r["alert"] for g in alerts["groups"] for r in g["rules"]}
    assert {
        "CovidnewsApiDown",
        "CovidnewsApi5xxRate",
        "CovidnewsNlpQueueGrowing",
        "CovidnewsTaskFailures",
        "CovidnewsIndexLagging",
    } <= names
    for g in alerts["groups"]:
        for r in g["rules"]:
            assert r["labels"]["severity"] in {"critical", "warning", "info"}
            assert r["annotations"]["summary"]


def test_charted_metrics_are_defined_by_the_code() -> None:
    queried = set().union(*queried_metrics().values())
    missing = sorted(queried - defined_metrics())
    assert not missing, f"charted or alerted on, but defined nowhere in the code: {missing}"


def test_the_sweep_is_scheduled_whoever_runs_the_bot() -> None:
    """Beat always schedules the NLP sweep; the bot-cronjobs component keeps beat running and
    only drops the bot's entries from it (COVIDNEWS_BEAT_BOT=false)."""
    from covidnews.celery import make_app
    from covidnews.settings import get_settings

    tasks = {e["task"] for e in make_app().conf.beat_schedule.values()}
    assert {"nlp_worker.tasks.sweep", "bot.tasks.run_once", "bot.tasks.digest"} <= tasks
    component = yaml.safe_load(
        (K8S / "components" / "bot-cronjobs" / "kustomization.yaml").read_text(encoding="utf-8")
    )
    beat_patches = [
        yaml.safe_load(p["patch"])
        for p in component["patches"]
        if re.fullmatch(p["target"]["name"], "covidnews-beat")
    ]
    ops = [op for patch in beat_patches for op in patch]
    assert not [op for op in ops if op["path"] == "/spec/replicas"]  # beat keeps running
    env = [e for op in ops if op["path"].endswith("/env") for e in op["value"]]
    assert {"name": "COVIDNEWS_BEAT_BOT", "value": "false"} in env
    get_settings.cache_clear()
    try:
        import os

        os.environ["COVIDNEWS_BEAT_BOT"] = "false"
        only = {e["task"] for e in make_app().conf.beat_schedule.values()}
    finally:
        del os.environ["COVIDNEWS_BEAT_BOT"]
        get_settings.cache_clear()
    assert only == {"nlp_worker.tasks.sweep"}
