"""`covidnews models list | pull`: what is in the models dir; a clean error without the hub.

No network: `pull` is pointed at an endpoint nothing listens on (HF_ENDPOINT=http://127.0.0.1:9).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("COVIDNEWS_", "HF_")) and k not in {"TRANSFORMERS_OFFLINE"}
    }
    env.update(
        COVIDNEWS_DATA_DIR=str(tmp_path / "var"),
        HF_ENDPOINT="http://127.0.0.1:9",  # refused at once: no network access in tests
        HF_HOME=str(tmp_path / "hf-home"),
        PYTHONUNBUFFERED="1",
    )
    return env


def test_models_list(env: dict[str, str], tmp_path: Path) -> None:
    empty = run_cli("models", "list", env=env)
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout == ""
    assert "0 models in" in empty.stderr and str(tmp_path / "var" / "models") in empty.stderr

    models = tmp_path / "var" / "models"
    pulled = models / "intfloat" / "multilingual-e5-small"
    pulled.mkdir(parents=True)
    (pulled / "config.json").write_text("{}", encoding="utf-8")
    (pulled / "model.safetensors").write_bytes(b"\0" * 2048)
    (pulled / ".covidnews-model.json").write_text(
        json.dumps({"model_id": "intfloat/multilingual-e5-small", "revision": "main"}),
        encoding="utf-8",
    )
    ct2 = models / "opus-mt-es-en-ct2"  # a folder copied by hand: no marker, a model.bin
    ct2.mkdir()
    (ct2 / "model.bin").write_bytes(b"\0" * 10)
    (models / "cache" / "classifier-embeddings").mkdir(parents=True)  # not a model

    listed = run_cli("models", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert rows == [
        {
            "model_id": "intfloat/multilingual-e5-small",
            "path": str(pulled),
            "revision": "main",
            "bytes": 2048 + 2 + len((pulled / ".covidnews-model.json").read_bytes()),
        },
        {"model_id": "opus-mt-es-en-ct2", "path": str(ct2), "revision": None, "bytes": 10},
    ]
    text = run_cli("models", "list", env=env)
    assert text.returncode == 0
    assert text.stdout.splitlines()[0].startswith("intfloat/multilingual-e5-small")
    assert "2 models in" in text.stderr

    other = tmp_path / "baked"
    (other / "org" / "m").mkdir(parents=True)
    (other / "org" / "m" / "modules.json").write_text("[]", encoding="utf-8")
    elsewhere = run_cli("models", "list", "--dir", str(other), env=env)
    assert elsewhere.returncode == 0 and elsewhere.stdout.startswith("org/m ")


def test_models_pull_fails_cleanly_offline(env: dict[str, str], tmp_path: Path) -> None:
    dest = tmp_path / "models"
    proc = run_cli(
        "models",
        "pull",
        "intfloat/multilingual-e5-small",
        "org/other",
        "--dest",
        str(dest),
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert "intfloat/multilingual-e5-small: cannot download from http://127.0.0.1:9" in proc.stderr
    assert "org/other: cannot download" in proc.stderr
    assert "machine with internet access" in proc.stderr
    assert "2 of 2 models could not be pulled" in proc.stderr
    assert proc.stdout == ""
    # nothing half-made is left behind
    assert not dest.exists() or not any(dest.rglob("*"))


def test_models_pull_without_huggingface_hub(env: dict[str, str], tmp_path: Path) -> None:
    import subprocess

    code = (
        "import sys; sys.modules['huggingface_hub'] = None\n"
        "from covidnews.cli import main\n"
        f"main(['models', 'pull', 'org/model', '--dest', {str(tmp_path / 'm')!r}])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert proc.returncode == 2, proc.stderr
    assert "huggingface_hub is not installed" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_models_pull_rejects_bad_ids(env: dict[str, str], tmp_path: Path) -> None:
    proc = run_cli("models", "pull", "../escape", "--dest", str(tmp_path / "m"), env=env)
    assert proc.returncode == 2
    assert "not a model id" in proc.stderr
