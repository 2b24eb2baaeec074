"""``covidnews models pull | list``: Hugging Face models for the optional ``ml`` backends.

The default install needs no model hub (the offline ``nlp`` extra ships its models inside
packages). The Hugging Face backends (``COVIDNEWS_TRANSLATOR=transformers|ctranslate2``, the
sentence-transformers embedder) load a model id or a local folder; in production, pull the
models once on a machine with internet (``covidnews models pull``), then bake the folder into
the image or mount it, and point the settings at the local paths (loaded with
``local_files_only``, so nothing is fetched at run time).
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from covidnews.commands._common import EXIT_INPUT, EXIT_SETTINGS, CommandError, load

MARKER = ".covidnews-model.json"
# Files that make a folder a loadable model (transformers, sentence-transformers, CTranslate2).
MODEL_FILES = ("config.json", "modules.json", "model.bin", MARKER)


@click.group()
def models() -> None:
    """Hugging Face models for the optional ml backends: pull them, list what is there.

    Models go to the models dir (COVIDNEWS_DATA_DIR/models) unless --dest says otherwise.
    Point COVIDNEWS_EMBEDDING_MODEL / COVIDNEWS_TRANSLATION_MODELS at the printed paths.
    """


def _model_folder(dest: Path, model_id: str) -> Path:
    parts = [p for p in model_id.split("/") if p]
    if not parts or any(p in {".", ".."} for p in parts):
        raise click.BadParameter(f"not a model id: {model_id!r}", param_hint="MODEL_ID")
    return dest.joinpath(*parts)


@models.command()
@click.argument("model_ids", metavar="MODEL_ID...", nargs=-1, required=True)
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to put the models in (default: the models dir, COVIDNEWS_DATA_DIR/models).",
)
@click.option("--revision", help="A branch, tag or commit of the model repository.")
def pull(model_ids: tuple[str, ...], dest: Path | None, revision: str | None) -> None:
    """Download MODEL_ID... from the Hugging Face Hub into DEST/ORG/NAME (needs internet).

    HF_ENDPOINT and HF_TOKEN are honoured (a mirror; gated models).
    """
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise CommandError(
            "huggingface_hub is not installed: pip install 'covidnews[ml]' "
            "(or pip install huggingface_hub) on a machine with internet",
            EXIT_SETTINGS,
        ) from None
    target_root = dest if dest is not None else load().models_dir
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    failed = 0
    for model_id in model_ids:
        folder = _model_folder(target_root, model_id)
        created = not folder.exists()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = snapshot_download(model_id, revision=revision, local_dir=str(folder))
        except Exception as exc:  # network, auth, missing repo: one clear line each, no traceback
            failed += 1
            if created:  # leave no empty or half-filled folder behind
                _remove(folder, target_root)
            reason = " ".join(str(exc).split()) or type(exc).__name__
            click.echo(
                f"{model_id}: cannot download from {endpoint} ({type(exc).__name__}: "
                f"{reason[:300]}). Run this on a machine with internet access, or set "
                "HF_ENDPOINT to a reachable mirror.",
                err=True,
            )
            continue
        (Path(path) / MARKER).write_text(
            json.dumps(
                {
                    "model_id": model_id,
                    "revision": revision,
                    "pulled_at": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            ),
            encoding="utf-8",
        )
        click.echo(f"{model_id}\t{path}")
    if failed:
        raise CommandError(f"{failed} of {len(model_ids)} models could not be pulled", EXIT_INPUT)


def _remove(folder: Path, root: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    for parent in folder.parents:
        if parent == root or root not in parent.parents:
            break
        try:
            parent.rmdir()  # only when empty
        except OSError:
            break


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink())


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # pragma: no cover - the loop always returns


def find_models(root: Path) -> list[dict[str, Any]]:
    """Model folders under ``root`` (outermost only), with id, path and size."""
    found: list[dict[str, Any]] = []
    if not root.is_dir():
        return found
    pending = [root]
    while pending:
        folder = pending.pop()
        if folder != root and any((folder / name).is_file() for name in MODEL_FILES):
            marker = folder / MARKER
            model_id = folder.relative_to(root).as_posix()
            revision = None
            if marker.is_file():
                try:
                    meta = json.loads(marker.read_text(encoding="utf-8"))
                    model_id = str(meta.get("model_id") or model_id)
                    revision = meta.get("revision")
                except (OSError, ValueError):
                    pass
            found.append(
                {
                    "model_id": model_id,
                    "path": str(folder),
                    "revision": revision,
                    "bytes": _size(folder),
                }
            )
            continue
        pending.extend(
            sorted(
                (p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                reverse=True,
            )
        )
    return sorted(found, key=lambda m: m["model_id"])


@models.command("list")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to look in (default: the models dir, COVIDNEWS_DATA_DIR/models).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per model.")
def list_models(directory: Path | None, as_json: bool) -> None:
    """The models in the models dir: id, path and size on disk."""
    root = directory if directory is not None else load().models_dir
    found = find_models(root)
    for m in found:
        if as_json:
            click.echo(json.dumps(m))
        else:
            click.echo(f"{m['model_id']:<48} {_human(m['bytes']):>9}  {m['path']}")
    if not as_json:
        click.echo(f"{len(found)} models in {root}", err=True)
