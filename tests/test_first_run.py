"""A newcomer's first run: the system-packages step, and the demo on a machine without Apertium
(it serves an untranslated archive with one warning line; `covidnews process` translates later).

The fresh clone and fresh venv themselves are what `.ci/run` does on every CI machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.api.test_serve import _free_port
from tests.conftest import ROOT, run_cli
from tests.covidnews.test_demo_serve import start_demo, wait_listening

SCRIPT = ROOT / "scripts" / "install-system-deps"
INSTALL_LINE = "sudo apt-get install -y --no-install-recommends"


def _empty_dpkg(tmp_path: Path) -> Path:
    """A dpkg database with nothing installed (dpkg-query reads ``DPKG_ADMINDIR``)."""
    admin = tmp_path / "dpkg"
    admin.mkdir()
    (admin / "status").write_text("")
    return admin


def _as_nobody(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run as an unprivileged user without sudo rights (or as ourselves when not root)."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    return subprocess.run(
        [*prefix, *args], env=env, capture_output=True, text=True, timeout=60, cwd="/"
    )


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs dpkg (Debian/Ubuntu)")
def test_without_root_the_script_prints_the_one_command_to_run(tmp_path: Path) -> None:
    env = dict(os.environ, DPKG_ADMINDIR=str(_empty_dpkg(tmp_path)))
    env.pop("SUDO_ASKPASS", None)
    demo = _as_nobody(str(SCRIPT), "demo", env=env)
    # The demo goes on without translation: exit 0, one install line naming the package.
    assert demo.returncode == 0, demo.stderr
    assert f"{INSTALL_LINE} apertium-eng-spa" in demo.stderr
    assert "covidnews process" in demo.stderr
    suite = _as_nobody(str(SCRIPT), "test", env=env)
    # The suite cannot: exit 1, and the line lists everything it needs.
    assert suite.returncode == 1
    line = next(x for x in suite.stderr.splitlines() if INSTALL_LINE in x)
    for package in ("apertium-eng-spa", "postgresql", "redis-server", "chromium"):
        assert package in line.split(), line
    assert _as_nobody(str(SCRIPT), "nonsense", env=env).returncode == 2


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs dpkg (Debian/Ubuntu)")
def test_check_mode_reports_what_is_missing_and_installs_nothing(tmp_path: Path) -> None:
    env = dict(os.environ, DPKG_ADMINDIR=str(_empty_dpkg(tmp_path)))
    proc = subprocess.run(
        [str(SCRIPT), "--check", "test"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert "missing apertium-eng-spa make postgresql redis-server chromium" in proc.stderr
    # On this machine (after `make test`'s own system-packages step) nothing is missing.
    ok = subprocess.run([str(SCRIPT), "--check", "test"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr


def test_make_and_ci_run_the_script_first() -> None:
    for target, profile in (("demo", "demo"), ("test", "test")):
        # Under `make test` the suite inherits MAKELEVEL/MAKEFLAGS; a nested make would then
        # print "Entering directory" lines. Ask as a user at a shell would.
        env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
        dry = subprocess.run(
            ["make", "-n", target], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert dry.returncode == 0, dry.stderr
        first = dry.stdout.strip().splitlines()[0]
        assert first == f"scripts/install-system-deps {profile}", dry.stdout
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [
        line.strip()
        for line in ci.splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "printf", "set ", "cd "))
    ]
    assert commands == ["scripts/install-system-deps test", "make test"]


def _path_without(names: tuple[str, ...], tmp_path: Path) -> str:
    """A PATH with every command of this one except those whose name starts with ``names``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not directory or not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            target = bin_dir / entry.name
            if entry.name.startswith(names) or target.exists():
                continue
            target.symlink_to(entry.path)
    return str(bin_dir)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_demo_without_apertium_serves_an_untranslated_archive(tmp_path: Path) -> None:
    """No Apertium on PATH: the demo warns in one line, stores and serves every article
    (untranslated, said on the article page), and `covidnews process` translates them once
    Apertium is there."""
    site_port, api_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVIDNEWS_")}
    env.update(
        COVIDNEWS_DATA_DIR=str(tmp_path / "var"),
        PATH=_path_without(("apertium",), tmp_path),
        PYTHONUNBUFFERED="1",
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc, out, err = start_demo(env, site_port, api_port)
    try:
        url, printed = wait_listening(proc, out)
        errors = list(err.queue)
        assert url == f"http://127.0.0.1:{api_port}", (printed, errors[-30:])
        warnings = [x for x in errors if "apertium" in x]
        assert len(warnings) == 1, errors  # one line, naming the fix
        assert "apt-get install apertium-eng-spa" in warnings[0]
        assert "covidnews process" in warnings[0]
        assert re.search(r"processed: (\d+) articles ready to search, 0 failed", "".join(printed))

        # An article page says its translation is not available yet (no translation links).
        with urllib.request.urlopen(f"{url}/api/v1/search?per_page=1", timeout=30) as r:
            first = json.loads(r.read())["results"][0]
        with urllib.request.urlopen(f"{url}/articulo/{first['id']}", timeout=30) as r:
            page = r.read().decode()
        assert 'id="translation-deferred"' in page and 'id="view-translation"' not in page
        with urllib.request.urlopen(f"{url}/articulo/{first['id']}?lang=en", timeout=30) as r:
            assert "The translation of this article is not available yet." in r.read().decode()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not any("Traceback" in x for x in err.queue), list(err.queue)[-30:]

    before = json.loads(run_cli("stats", "--json", env=env).stdout)
    assert before["translations"] == 0 and before["translations_deferred"] > 0
    # `process` without Apertium: the same one line, no traceback, nothing lost.
    again = run_cli("process", env=env)
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr
    assert "apt-get install apertium-eng-spa" in again.stderr
    # Apertium installed (the normal PATH): `process` translates what was deferred.
    env["PATH"] = os.environ["PATH"]
    done = run_cli("process", env=env)
    assert done.returncode == 0, done.stderr
    assert f"translating {before['translations_deferred']} articles" in done.stderr
    after = json.loads(run_cli("stats", "--json", env=env).stdout)
    assert after["translations_deferred"] == 0
    assert after["translations"] == before["translations_deferred"]
    assert after["states"]["done"] == before["states"]["done"]
