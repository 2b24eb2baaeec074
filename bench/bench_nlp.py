"""NLP pipeline throughput (per-stage ms/doc, docs/s) next to the bare backends on the same texts.

``N`` real Spanish Covid news articles (FakeDeS ``labelled_dev.jsonl``, labelled Covid, with a
headline) are ingested into a throw-away SQLite store and run through the real pipeline:
``stages.run_batch`` in batches, with the default backends (language id, the committed
classifier, the extractive summariser, the apertium translator, the E5 embedder). Per-stage times
come from the batch reports (``BatchReport.stage_seconds``); ``total`` is the wall time of
``run_batch`` (rows loaded, every stage, commit).

Batch by batch, alternately before and after the pipeline (paired in time, so a busy machine or
a warm cache favours neither), the bare backends on the same articles, chained as the stages
chain them (detected language → embedding → Covid flag → summary → translation):
- ``apertium_cli``: one ``apertium -u spa-eng`` subprocess over every title, summary and text the
  translate stage sent (paragraphs separated by blank lines; its start-up is reported apart);
- ``translator_backend``: ``ApertiumTranslator.translate`` over the same texts in one call;
- ``embed``: the embedder's ``encode`` of the articles' document texts;
- ``classify_predict``: the classifier's ``predict`` on those embeddings;
- ``langid`` and ``summarize``: the detector and the summariser on the same samples.

The whole run is repeated ``--rounds`` times (a fresh store each time) and the best time of each
figure is kept. Overhead = (pipeline time − bare time) / bare time: translate, classify + embed
(the classifier's embedding is reused by the embed stage, so the pair costs one ``encode``), and
the whole batch. Also the RSS of this process (backends loaded, batches processed) and, with
``--celery``, of a real ``celery worker`` that processed the same articles (needs Redis).

Prints one JSON object. Usage: python bench/bench_nlp.py [--n 48] [--batch-size 16] [--celery]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import ROOT, SHARED, Timer, redis_url
from bench._load import stop
from covidnews.embed import document_text

STAGE_NAMES = ("langid", "classify", "summarize", "translate", "embed")


def covid_articles(n: int) -> list[dict[str, Any]]:
    """``n`` Covid articles with a headline (cycled, with distinct URLs, past the 100 or so)."""
    path = SHARED / "fakedes" / "labelled_dev.jsonl"
    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    rows = [r for r in rows if r.get("covid") and r.get("headline") and r["text"].strip()]
    return [
        {
            "url": f"https://medio.example/covid/{i}",
            "title": rows[i % len(rows)]["headline"],
            "text": rows[i % len(rows)]["text"],
            "language": "es",
        }
        for i in range(n)
    ]


def proc_status(pid: int | str = "self") -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) of a process, in MiB."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def tree_rss(pid: int) -> float:
    """Summed VmRSS (MiB) of a process and all its descendants (the apertium pipeline)."""
    total, todo = 0.0, [str(pid)]
    while todo:
        current = todo.pop()
        try:
            total += proc_status(current).get("VmRSS", 0.0)
            todo += Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
    return round(total, 1)


#: CPU seconds of this process's threads, by bare step (filled by ``timed``; the caller resets)
CPU: dict[str, float] = {}


def timed(fn: Callable[[], Any], name: str = "") -> tuple[float, Any]:
    """Wall seconds of ``fn()`` and its result; its CPU seconds go to ``CPU[name]``."""
    started, cpu = time.perf_counter(), time.process_time()
    result = fn()
    if name:
        CPU[name] = time.process_time() - cpu
    return time.perf_counter() - started, result


def warm_up(backends: Any) -> None:
    """Load every model and start the apertium pipeline on other text (not measured)."""
    text = "El Gobierno anunció nuevas medidas contra la pandemia de coronavirus en el país."
    backends.detect_language(text)
    backends.classifier.predict([{"title": "Vacunas", "text": text}])
    backends.embedder.encode([text], kind="passage")
    if backends.translator is not None:
        backends.translator.translate(["Hola.", text], "es", "en")
    if backends.split_sentences is not None:
        backends.split_sentences(text, "es")


def bare_apertium(mode: str, texts: list[str]) -> float:
    """Seconds for one ``apertium -u MODE`` subprocess over these texts (paragraphs separated
    by blank lines, as Apertium's plain mode takes them); no texts: the start-up alone."""
    from nlp_worker.backends.translate import clean_text

    document = "\n\n".join(clean_text(t).strip() for t in texts if t.strip()) + "\n"
    cmd = ["apertium", "-u", mode]

    def run(data: str) -> None:
        subprocess.run(cmd, input=data.encode(), capture_output=True, check=True)

    seconds, _ = timed(lambda: run(document))
    return seconds


def celery_worker_rss(rows: list[dict[str, Any]], batch: int, tmp: Path) -> dict[str, Any]:
    """Ingest the rows into a fresh SQLite store, process them with a real ``celery worker``
    (prefork, one child) and read the child's RSS from /proc."""
    import redis

    from covidnews.ingest import parse_record
    from covidnews.store import Store

    broker = redis_url(14)
    client = redis.Redis.from_url(broker)
    client.flushdb()
    db = f"sqlite:///{tmp / 'celery.db'}"
    store = Store(db)
    store.migrate()
    ids = store.upsert_articles([parse_record(r) for r in rows]).inserted
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVIDNEWS_")}
    env.update(
        COVIDNEWS_DATABASE_URL=db,
        COVIDNEWS_DATA_DIR=str(tmp / "celery-var"),
        COVIDNEWS_BROKER_URL=broker,
        COVIDNEWS_NLP_BATCH_SIZE=str(batch),
        PYTHONUNBUFFERED="1",
    )
    log = (tmp / "worker.log").open("wb")
    cmd = [sys.executable, "-m", "celery", "-A", "covidnews.celery", "worker"]
    cmd += ["-Q", "nlp,index", "-c", "1", "--pool", "prefork", "--without-gossip"]
    cmd += ["--without-mingle", "--without-heartbeat"]
    worker = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        from celery import Celery

        app = Celery("covidnews", broker=broker)
        for start in range(0, len(ids), batch):
            app.send_task(
                "nlp_worker.tasks.process_batch", args=[ids[start : start + batch]], queue="nlp"
            )
        deadline = time.monotonic() + 1800
        from sqlalchemy import func, select

        from covidnews.schema import Article

        while time.monotonic() < deadline:
            with store.session() as s:
                done = s.scalar(
                    select(func.count()).select_from(Article).where(Article.state == "done")
                )
            if done == len(ids) or worker.poll() is not None:
                break
            time.sleep(1)
        if done != len(ids):
            raise RuntimeError(f"the celery worker processed {done} of {len(ids)} articles")
        children = (
            Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
            if worker.poll() is None
            else []
        )
        return {
            "main_process_mib": proc_status(worker.pid),
            "pool_child_mib": [proc_status(c) for c in children],
        }
    finally:
        stop(worker, timeout=30)
        log.close()
        store.close()
        client.flushdb()


def overhead(pipeline: float, bare: float) -> float:
    return round((pipeline - bare) / bare, 3) if bare > 0 else 0.0


def bare_batch(backends: Any, rows: list[dict[str, Any]], mode: str) -> dict[str, Any]:
    """Seconds of each bare backend on one batch of articles, chained as the stages chain them
    (the detected language, the Covid flag and the summary feed the next step), and what the
    translate stage sends."""
    from nlp_worker.stages import LANGID_MIN_CONFIDENCE, _targets
    from nlp_worker.summarize import summarize

    bare: dict[str, float] = {}
    samples = [f"{r['title']}\n{r['text'][:3000]}" for r in rows]
    bare["langid"], detected = timed(
        lambda: [backends.detect_language(t) for t in samples], "langid"
    )
    languages = [
        found if found and (not r["language"] or (conf >= LANGID_MIN_CONFIDENCE)) else r["language"]
        for r, (found, conf) in zip(rows, detected, strict=True)
    ]
    docs = [document_text(r["title"], r["text"]) for r in rows]
    bare["embed"], vectors = timed(lambda: backends.embedder.encode(docs, kind="passage"), "embed")
    items = [{"title": r["title"], "text": r["text"]} for r in rows]
    bare["classify_predict"], predicted = timed(
        lambda: backends.classifier.predict(items, embeddings=vectors), "classify_predict"
    )
    splitter = backends.split_sentences

    def summaries() -> list[str]:
        out = []
        for r, language in zip(rows, languages, strict=True):

            def split(text: str, lang: str | None = language) -> list[str]:
                return list(splitter(text, lang))

            out.append(summarize(r["text"], title=r["title"], split=split))
        return out

    bare["summarize"], summary = timed(summaries, "summarize")
    pairs = backends.translator.pairs()
    sent = [
        t
        for r, language, p, s in zip(rows, languages, predicted, summary, strict=True)
        if p["is_covid"] and _targets(language, pairs)
        for t in (r["title"], s, r["text"])
    ]
    bare["apertium_cli"] = bare_apertium(mode, sent) if sent else 0.0
    bare["translator_backend"], _ = timed(lambda: backends.translator.translate(sent, "es", "en"))
    return {
        "seconds": bare,
        "cpu": dict(CPU),
        "translated": len(sent) // 3,
        "chars": sum(map(len, sent)),
    }


def one_round(
    backends: Any, rows: list[dict[str, Any]], batch: int, url: str, mode: str
) -> dict[str, Any]:
    """The pipeline on a fresh store and the bare backends on the same articles, batch by batch,
    alternately one or the other first (paired in time, so a busy neighbour or a warm cache
    favours neither)."""
    from covidnews.ingest import parse_record
    from covidnews.store import Store
    from nlp_worker.leases import claim, new_owner
    from nlp_worker.stages import run_batch

    store = Store(url)
    store.migrate()
    ids = store.upsert_articles([parse_record(r) for r in rows]).inserted
    stages = dict.fromkeys(STAGE_NAMES, 0.0)
    stages_cpu = dict.fromkeys(STAGE_NAMES, 0.0)
    bare: dict[str, float] = {}
    bare_cpu: dict[str, float] = {}
    total = 0.0
    texts_embedded = done = translated = chars = 0
    for number, start in enumerate(range(0, len(ids), batch)):
        claimed = claim(store, ids[start : start + batch], new_owner(), 3600)
        for step in ("pipeline", "bare") if number % 2 == 0 else ("bare", "pipeline"):
            if step == "pipeline":
                started = time.perf_counter()
                report = run_batch(store, claimed, backends)
                total += time.perf_counter() - started
                for stage, seconds in report.stage_seconds.items():
                    stages[stage] += seconds
                    stages_cpu[stage] += report.stage_cpu_seconds[stage]
                texts_embedded += report.texts_embedded
                done += len(report.done)
            else:
                figures = bare_batch(backends, rows[start : start + batch], mode)
                for key, seconds in figures["seconds"].items():
                    bare[key] = bare.get(key, 0.0) + seconds
                for key, seconds in figures["cpu"].items():
                    bare_cpu[key] = bare_cpu.get(key, 0.0) + seconds
                translated += figures["translated"]
                chars += figures["chars"]
    store.close()
    if done != len(ids):
        raise RuntimeError(f"the pipeline processed {done} of {len(ids)} articles")
    return {
        "stages": stages,
        "stages_cpu": stages_cpu,
        "total": total,
        "bare": bare,
        "bare_cpu": bare_cpu,
        "texts_embedded": texts_embedded,
        "translated": translated,
        "chars": chars,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=48, help="articles (default 48)")
    parser.add_argument("--batch-size", type=int, default=16, help="articles per run_batch")
    parser.add_argument("--rounds", type=int, default=2, help="repeat; the best of each is kept")
    parser.add_argument(
        "--celery", action="store_true", help="also measure a real celery worker's RSS (Redis)"
    )
    args = parser.parse_args()

    from covidnews.settings import load_settings
    from nlp_worker.backends.translate import ApertiumTranslator
    from nlp_worker.stages import Backends

    rows = covid_articles(args.n)
    n = len(rows)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        settings = load_settings(data_dir=tmp / "var", database_url=f"sqlite:///{tmp / 'b.db'}")
        with Timer() as load:
            backends = Backends.from_settings(settings)
            warm_up(backends)
        rss_loaded = proc_status()
        apertium = backends.translator
        if not isinstance(apertium, ApertiumTranslator):  # the bench times Apertium's pipes
            raise SystemExit("bench_nlp needs COVIDNEWS_TRANSLATOR=apertium")
        mode = apertium._modes[("es", "en")]
        runs = [
            one_round(backends, rows, args.batch_size, f"sqlite:///{tmp / f'r{r}.db'}", mode)
            for r in range(max(1, args.rounds))
        ]
        rss_after = proc_status()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        apertium_startup = min(bare_apertium(mode, []) for _ in range(3))

        # Best of the rounds, for each figure (noise only ever adds time).
        stages = {k: min(r["stages"][k] for r in runs) for k in STAGE_NAMES}
        total = min(r["total"] for r in runs)
        bare = {k: min(r["bare"][k] for r in runs) for k in runs[0]["bare"]}
        stages_cpu = {k: min(r["stages_cpu"][k] for r in runs) for k in STAGE_NAMES}
        bare_cpu = {k: min(r["bare_cpu"][k] for r in runs) for k in runs[0]["bare_cpu"]}
        classify_embed = stages["classify"] + stages["embed"]
        bare_classify_embed = bare["embed"] + bare["classify_predict"]
        bare_total = bare["langid"] + bare_classify_embed + bare["summarize"]
        out: dict[str, Any] = {
            "benchmark": "nlp",
            "articles": n,
            "batch_size": args.batch_size,
            "rounds": len(runs),
            "translated_articles": runs[0]["translated"],
            "translated_chars": runs[0]["chars"],
            "embedder": backends.embedder.model_id,
            "translator": apertium.model_id,
            "classifier": backends.classifier.model_id,
            "backends_load_seconds": round(load.seconds, 2),
            "pipeline": {
                "total_seconds": round(total, 3),
                "docs_per_s": round(n / total, 2),
                "ms_per_doc": round(1000 * total / n, 1),
                "texts_embedded_per_article": round(runs[0]["texts_embedded"] / n, 2),
                "stages_ms_per_doc": {k: round(1000 * v / n, 2) for k, v in stages.items()},
                "stages_docs_per_s": {k: round(n / v, 1) if v else None for k, v in stages.items()},
                "outside_stages_ms_per_doc": round(1000 * (total - sum(stages.values())) / n, 2),
            },
            "bare_ms_per_doc": {k: round(1000 * v / n, 2) for k, v in bare.items()},
            "apertium_cli_startup_seconds": round(apertium_startup, 3),
            # CPU time of this process: robust to a busy neighbour, but blind to subprocesses
            # (apertium), so only for the in-process stages.
            "cpu_ms_per_doc": {
                "stages": {k: round(1000 * v / n, 2) for k, v in stages_cpu.items()},
                "bare": {k: round(1000 * v / n, 2) for k, v in bare_cpu.items()},
            },
            "cpu_overhead": {
                "classify_embed_vs_encode_predict": overhead(
                    stages_cpu["classify"] + stages_cpu["embed"],
                    bare_cpu["embed"] + bare_cpu["classify_predict"],
                ),
                "langid": overhead(stages_cpu["langid"], bare_cpu["langid"]),
                "summarize": overhead(stages_cpu["summarize"], bare_cpu["summarize"]),
                "in_process_stages": overhead(
                    sum(v for k, v in stages_cpu.items() if k != "translate"),
                    sum(v for k, v in bare_cpu.items()),
                ),
            },
            "overhead": {
                "translate_vs_apertium_cli": overhead(stages["translate"], bare["apertium_cli"]),
                "translate_vs_translator_backend": overhead(
                    stages["translate"], bare["translator_backend"]
                ),
                "classify_embed_vs_encode_predict": overhead(classify_embed, bare_classify_embed),
                "langid": overhead(stages["langid"], bare["langid"]),
                "summarize": overhead(stages["summarize"], bare["summarize"]),
                "total_vs_bare_backends_with_apertium_cli": overhead(
                    total, bare_total + bare["apertium_cli"]
                ),
                "total_vs_bare_backends_with_translator_backend": overhead(
                    total, bare_total + bare["translator_backend"]
                ),
            },
            "rss_mib": {
                "backends_loaded": rss_loaded,
                "after_batches": rss_after,
                "peak_ru_maxrss": round(usage.ru_maxrss / 1024, 1),
                "apertium_pipeline": sum(
                    tree_rss(pipe_proc.pid)
                    for pipe_proc in (p._proc for p in apertium._pipes.values())
                    if pipe_proc is not None
                ),
            },
        }
        if args.celery:
            out["celery_worker_rss_mib"] = celery_worker_rss(rows, args.batch_size, tmp)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
