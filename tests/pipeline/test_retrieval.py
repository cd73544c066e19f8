"""First-stage retrieval: shipped candidates, the bm25s backend, the Pyserini backend and the CLI.

Most tests run on a tiny synthetic BEIR dataset written under ``$PERANK_DATA`` in the layout of the
shipped ArguAna files, so the whole public path (registry -> index -> search -> files) runs in
milliseconds. The real-corpus check (ArguAna nDCG@10 against Pyserini's published 0.397) and the
Pyserini test (which starts a JVM) are marked ``slow``; the latter is skipped when Java cannot start.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers.paths import REPO
from perank.datasets import get_dataset
from perank.io import read_qrels, read_retrieval_results, read_topics, read_trec_run
from perank.retrieval import (
    beir_passage_text,
    build_bm25s_index,
    java_problem,
    load_or_build_bm25s_index,
    resolve_backend,
    retrieval_results_path,
    retrieve,
    run_retrieval,
    search_topics,
)
from perank.retrieval.analysis import LuceneEnglishAnalyzer, lucene_porter_stem, standard_tokenize
from perank.retrieval.api import bm25s_batches
from perank.retrieval.bm25s_backend import lucene_quantized_length
from perank.types import InputError

DL19_TREC = REPO / "data" / "msmarco-passage" / "trec_results_dl19.txt"

# A tiny ArguAna-like collection: every query is also a document (same id), as in ArguAna.
DOCS = [
    ("d-cats", "Cats", "Cats purr when they are content; a purring cat is a happy cat."),
    ("d-dogs", "Dogs", "Dogs bark at strangers and wag their tails."),
    ("d-tax", "", "Taxes on carbon emissions reduce pollution from factories."),
    ("d-space", "Space", "Rockets carry satellites into orbit around the earth."),
    ("q-cats", "Cats again", "Why do cats purr? Purring cats are content."),
    ("d-fish", "Fish", "Fish swim in rivers and seas."),
    ("d-kitten", "Kittens", "Young cats play all day."),
]
QUERIES = {"q-cats": "Why do cats purr? Purring cats are content.", "q-tax": "carbon taxes and pollution"}
QRELS = {"q-cats": {"d-cats": 1}, "q-tax": {"d-tax": 1}}


def _write_jsonl_gz(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")


@pytest.fixture
def tiny_beir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A synthetic 'arguana' under a temporary ``$PERANK_DATA``, with results and indexes in tmp too."""
    data = tmp_path / "data"
    _write_jsonl_gz(data / "beir/arguana/corpus.jsonl.gz", [{"_id": d, "title": t, "text": x} for d, t, x in DOCS])
    _write_jsonl_gz(data / "beir/arguana/queries.jsonl.gz", [{"_id": q, "text": t} for q, t in QUERIES.items()])
    qrels = "".join(f"{q} 0 {d} {g}\n" for q, docs in QRELS.items() for d, g in docs.items())
    (data / "beir/qrels.beir-v1.0.0-arguana.test.txt").write_text(qrels, encoding="utf-8")
    monkeypatch.setenv("PERANK_DATA", str(data))
    monkeypatch.setenv("PERANK_RESULTS", str(tmp_path / "results"))
    monkeypatch.delenv("PERANK_INDEX_CACHE", raising=False)
    return data


# ----------------------------------------------------------------------------------------------- naming


def test_retrieval_results_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERANK_RESULTS", str(tmp_path))
    assert retrieval_results_path("dl19", "bm25", 100) == tmp_path / "retrieval_results/bm25/dl19_top100.jsonl"
    assert retrieval_results_path("covid", "bm25", 20).name == "covid_top20.jsonl"


def test_backend_resolution() -> None:
    assert resolve_backend("dl19") == "shipped"
    assert resolve_backend("arguana") == "bm25s"
    assert resolve_backend("covid") == "pyserini"
    assert resolve_backend("arguana", "pyserini") == "pyserini"
    with pytest.raises(InputError, match="unknown backend"):
        resolve_backend("dl19", "elastic")


# ------------------------------------------------------------------------------------ shipped candidates


def test_dl19_offline_matches_shipped_trec_run() -> None:
    requests = retrieve("dl19", "bm25", 100)
    assert len(requests) == 43
    assert all(len(r.candidates) == 100 for r in requests)
    assert all([c.rank for c in r.candidates] == list(range(1, 101)) for r in requests)
    qid, _, docid, rank, score, _ = DL19_TREC.read_text(encoding="utf-8").splitlines()[0].split()
    first = requests[0]
    assert (first.query.qid, first.candidates[0].docid, first.candidates[0].rank) == (qid, docid, int(rank))
    assert first.candidates[0].score == pytest.approx(float(score))
    assert first.candidates[0].text  # passages come with their text, for the rerankers


def test_topk_truncates_and_too_large_topk_is_explained() -> None:
    full = retrieve("dl19", topk=100)
    top5 = retrieve("dl19", topk=5)
    assert all(len(r.candidates) == 5 for r in top5)
    assert [c.docid for c in top5[3].candidates] == [c.docid for c in full[3].candidates[:5]]
    with pytest.raises(InputError, match=r"ships only the top 100.*topk=101"):
        retrieve("dl19", topk=101)
    with pytest.raises(InputError, match="positive integer"):
        retrieve("dl19", topk=0)
    with pytest.raises(InputError, match="unknown retriever"):
        retrieve("dl19", retriever="splade")


def test_unknown_dataset_lists_known_names() -> None:
    with pytest.raises(InputError, match=r"unknown dataset 'nope'; known: dl19, dl20, covid"):
        retrieve("nope")


def test_no_corpus_and_no_network_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from perank.retrieval import pyserini_backend

    monkeypatch.setenv("PYSERINI_CACHE", str(tmp_path / "pyserini-cache"))
    monkeypatch.setattr(pyserini_backend, "_network_reachable", lambda *a, **k: False)
    with pytest.raises(InputError, match=r"prebuilt index 'beir-v1.0.0-trec-covid.flat'.*cannot be reached"):
        retrieve("covid", topk=10)
    with pytest.raises(InputError, match=r"'bm25s' needs a local corpus.*'covid' ships none"):
        retrieve("covid", topk=10, backend="bm25s")


# ------------------------------------------------------------------------------------------- analysis


def test_analyzer_matches_lucene_english_analysis() -> None:
    # Expected values are what Anserini's DefaultEnglishAnalyzer (Lucene StandardTokenizer, possessive,
    # lowercase, 33 stopwords, Porter) produces for the same strings.
    assert standard_tokenize("U.S.A. don't 3.14 1,000 e-mail foo_bar, end.") == [
        "U.S.A",
        "don't",
        "3.14",
        "1,000",
        "e",
        "mail",
        "foo_bar",
        "end",
    ]
    analyze = LuceneEnglishAnalyzer()
    assert analyze("The Government's technology is possibly useful to us, and THEIR cats") == [
        "govern",
        "technolog",
        "possibl",
        "us",
        "us",
        "cat",
    ]
    assert [lucene_porter_stem(w) for w in ("technology", "possibly", "us", "as", "running", "apology")] == [
        "technolog",
        "possibl",
        "us",
        "as",
        "run",
        "apolog",
    ]


def test_lucene_length_quantisation() -> None:
    # SmallFloat.byte4ToInt(SmallFloat.intToByte4(n)) in Lucene
    lengths = np.array([0, 1, 23, 24, 40, 41, 100, 1000, 5000])
    assert lucene_quantized_length(lengths).tolist() == [0, 1, 23, 24, 40, 40, 96, 984, 4632]


# ---------------------------------------------------------------------------------------------- bm25s


def test_bm25s_ranks_the_obvious_document_first() -> None:
    index = build_bm25s_index(DOCS)
    hits = index.search("purring cat", 3)
    assert hits[0].docid in {"d-cats", "q-cats"}
    assert {h.docid for h in hits[:2]} == {"d-cats", "q-cats"}
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    assert index.search("carbon pollution", 10)[0].docid == "d-tax"
    assert index.search("the and of", 10) == []  # stopwords only: nothing matches, as in Lucene
    assert index.search("zebra", 10) == []


def test_bm25s_breaks_ties_by_docid() -> None:
    index = build_bm25s_index([("b", "", "same words here"), ("a", "", "same words here"), ("c", "", "other")])
    assert [h.docid for h in index.search("same words", 5)] == ["a", "b"]


def test_query_never_retrieves_itself_and_still_gets_topk() -> None:
    index = build_bm25s_index(DOCS)
    texts = {d: beir_passage_text(t, x) for d, t, x in DOCS}
    requests = search_topics(QUERIES, bm25s_batches(index), lambda h: texts[h.docid], 2, remove_query=True)
    by_qid = {r.query.qid: r for r in requests}
    cats = [c.docid for c in by_qid["q-cats"].candidates]
    assert "q-cats" not in cats and cats[0] == "d-cats" and len(cats) == 2
    kept = search_topics(QUERIES, bm25s_batches(index), lambda h: texts[h.docid], 2, remove_query=False)
    assert kept[0].candidates[0].docid == "q-cats"  # without removal the query's own document wins


def test_beir_text_format() -> None:
    assert beir_passage_text("A title", "Some text.") == "Title: A title Content: Some text."
    assert beir_passage_text("", "Some text.") == "Title:  Content: Some text."


def test_retrieve_local_corpus_end_to_end(tiny_beir: Path) -> None:
    requests = retrieve("arguana", topk=3)
    assert [r.query.qid for r in requests] == list(QUERIES)
    cats = requests[0]
    assert cats.query.text == QUERIES["q-cats"]
    assert all(c.docid != "q-cats" for c in cats.candidates)
    assert cats.candidates[0].docid == "d-cats"
    assert (
        cats.candidates[0].text == "Title: Cats Content: Cats purr when they are content; a purring cat is a happy cat."
    )
    assert [c.rank for c in cats.candidates] == list(range(1, len(cats.candidates) + 1))
    tax = requests[1].candidates[0]
    assert (tax.docid, tax.text) == (
        "d-tax",
        "Title:  Content: Taxes on carbon emissions reduce pollution from factories.",
    )


def test_bm25s_index_cache_is_reused(tiny_beir: Path) -> None:
    corpus = get_dataset("arguana").require("corpus_file")
    first = load_or_build_bm25s_index(corpus, "arguana")
    second = load_or_build_bm25s_index(corpus, "arguana")
    assert not first.loaded_from_cache and second.loaded_from_cache
    assert second.docids == first.docids
    assert [(h.docid, h.score) for h in second.search("purring cats", 4)] == [
        (h.docid, h.score) for h in first.search("purring cats", 4)
    ]
    # a changed corpus gets a new index, never the stale one
    with gzip.open(corpus, "at", encoding="utf-8") as handle:
        handle.write(json.dumps({"_id": "d-new", "title": "", "text": "purring purring purring"}) + "\n")
    third = load_or_build_bm25s_index(corpus, "arguana")
    assert not third.loaded_from_cache and "d-new" in third.docids


def test_run_retrieval_writes_jsonl_and_trec(tiny_beir: Path) -> None:
    path = run_retrieval("arguana", "bm25", 3)
    assert path == tiny_beir.parent / "results/retrieval_results/bm25/arguana_top3.jsonl"
    back = read_retrieval_results(path)
    run = read_trec_run(path.with_suffix(".trec"))
    assert [r.query.qid for r in back] == list(run)
    assert [c.docid for c in back[0].candidates] == list(run[back[0].query.qid])


# ------------------------------------------------------------------------------------------------- CLI


def test_cli_writes_both_files_and_prints_ndcg(tmp_path: Path) -> None:
    env = dict(os.environ, PERANK_RESULTS=str(tmp_path), HF_HUB_OFFLINE="1")
    env.pop("PERANK_DATA", None)
    script = REPO / "src" / "scripts" / "run_evaluation.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--dataset", "dl19", "--retriever", "bm25", "--topk", "20"],
        cwd=tmp_path,  # works from any directory
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    jsonl = tmp_path / "retrieval_results/bm25/dl19_top20.jsonl"
    trec = tmp_path / "retrieval_results/bm25/dl19_top20.trec"
    assert jsonl.exists() and trec.exists()
    requests = read_retrieval_results(jsonl)
    assert len(requests) == 43 and all(len(r.candidates) == 20 for r in requests)
    assert sum(len(v) for v in read_trec_run(trec).values()) == 43 * 20
    line = proc.stdout.strip().splitlines()[-1]
    name, value = line.split("\t")
    assert name == "ndcg_cut_10" and 0.45 < float(value) < 0.56  # DL19 BM25 is 0.5058


def test_cli_reports_bad_input(tmp_path: Path) -> None:
    from perank.cli.retrieve import main

    assert main(["--dataset", "nope", "-q"]) == 2


# ----------------------------------------------------------------------------------- slow / real data


@pytest.mark.slow
def test_arguana_bm25s_reproduces_pyserini(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The full shipped ArguAna (8,674 docs, 1,406 queries): bm25s must match Pyserini's 0.397."""
    from perank.metrics import evaluate_run

    monkeypatch.setenv("PERANK_INDEX_CACHE", str(tmp_path / "indexes"))
    spec = get_dataset("arguana")
    requests = retrieve("arguana", topk=100, backend="bm25s")
    assert len(requests) == len(read_topics(spec.require("topics_file"))) == 1406
    assert all(c.docid != r.query.qid for r in requests for c in r.candidates)
    assert all(len(r.candidates) == 100 for r in requests)
    run = {r.query.qid: {c.docid: c.score for c in r.candidates} for r in requests}
    ndcg = evaluate_run(run, read_qrels(spec.require("qrels_file")))["ndcg_cut_10"]
    assert abs(ndcg - 0.397) < 0.005, ndcg  # brief: within 0.02; it reproduces to 4 decimals


@pytest.mark.slow
def test_pyserini_local_index_agrees_with_bm25s(tiny_beir: Path) -> None:
    problem = java_problem()
    if problem is not None:
        pytest.skip(f"Pyserini's JVM cannot start here: {problem}")
    key_before = os.environ.get("OPENAI_API_KEY")
    lucene = retrieve("arguana", topk=3, backend="pyserini")
    assert os.environ.get("OPENAI_API_KEY") == key_before  # the import-time placeholder does not leak
    embedded = retrieve("arguana", topk=3, backend="bm25s")
    assert [[c.docid for c in r.candidates] for r in lucene] == [[c.docid for c in r.candidates] for r in embedded]
    assert [c.text for c in lucene[0].candidates] == [c.text for c in embedded[0].candidates]
    for a, b in zip(lucene, embedded):
        # Anserini reports scores rounded to 4 decimals
        assert [c.score for c in a.candidates] == pytest.approx([c.score for c in b.candidates], abs=1e-4)
