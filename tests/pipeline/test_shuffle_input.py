"""``evaluate.py --shuffle-input reverse|SEED``: the reranker sees each query's candidates permuted, and the run is a
run of its own (its name and recorded settings carry the shuffle), while unshuffled runs keep their names."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from helpers.paths import REPO
from perank.cli.evaluate import main
from perank.io import read_qrels, read_retrieval_results, read_trec_run, write_retrieval_results
from perank.metrics import evaluate_run
from perank.shuffle import parse_shuffle, permutation, shuffled, unshuffled_name
from perank.types import InputError

DATA = REPO / "data" / "msmarco-passage"


@pytest.fixture(scope="module")
def candidates(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cands") / "dl19.top8.jsonl"
    requests = read_retrieval_results(DATA / "retrieve_results_dl19.json")[:3]
    for r in requests:
        del r.candidates[8:]
    write_retrieval_results(path, requests)
    return path


def evaluate(out: Path, candidates: Path, *extra: str) -> int:
    base = ["--datasets", "dl19", "--retrieval-results", str(candidates), "--reranker", "identity", "--topk", "8"]
    return main([*base, "--output-dir", str(out), "--no-progress", *extra])


def order(run: dict[str, dict[str, float]], qid: str) -> list[str]:
    return sorted(run[qid], key=lambda d: -run[qid][d])


def test_identity_with_reversed_input_ranks_in_reverse_first_stage_order(tmp_path: Path, candidates: Path) -> None:
    assert evaluate(tmp_path, candidates) == 0
    assert evaluate(tmp_path, candidates, "--shuffle-input", "reverse") == 0
    plain = read_trec_run(tmp_path / "eval_dl19_identity_top8.txt")  # the unshuffled name is unchanged
    flipped = read_trec_run(tmp_path / "eval_dl19_identity+shuffle-reverse_top8.txt")
    bm25 = {r.query.qid: [c.docid for c in r.candidates] for r in read_retrieval_results(candidates)}
    assert set(flipped) == set(bm25) and len(bm25) == 3
    for qid, docids in bm25.items():
        assert order(plain, qid) == docids
        assert order(flipped, qid) == docids[::-1]
    recorded = json.loads((tmp_path / "eval_dl19_identity+shuffle-reverse_top8.txt.metrics.json").read_text())
    assert recorded["shuffle_input"] == "reverse"
    # the scores say so too: trec_eval (and pytrec_eval) hold scores as 32-bit floats and break ties by docid, so
    # first-stage scores nudged down one double step would all tie and be scored in docid order
    reversed_run = {q: {d: float(i) for i, d in enumerate(docids)} for q, docids in bm25.items()}
    expected = evaluate_run(reversed_run, read_qrels(DATA / "qrels.dl19-passage.txt"))
    assert recorded["metrics"]["ndcg_cut_5"] == pytest.approx(expected["ndcg_cut_5"], abs=1e-12)
    docid_order = {q: {d: float(i) for i, d in enumerate(sorted(docids))} for q, docids in bm25.items()}
    assert evaluate_run(docid_order, read_qrels(DATA / "qrels.dl19-passage.txt"))["ndcg_cut_5"] != pytest.approx(
        expected["ndcg_cut_5"]
    )
    assert "shuffle_input" not in json.loads((tmp_path / "eval_dl19_identity_top8.txt.metrics.json").read_text())


def test_a_seed_gives_one_reproducible_permutation_per_query(tmp_path: Path, candidates: Path) -> None:
    assert evaluate(tmp_path / "a", candidates, "--shuffle-input", "7") == 0
    assert evaluate(tmp_path / "b", candidates, "--shuffle-input", "07", "--run-name", "mine") == 0
    first = (tmp_path / "a" / "eval_dl19_identity+shuffle-7_top8.txt").read_text()
    second = (tmp_path / "b" / "eval_dl19_mine+shuffle-7_top8.txt").read_text()  # --run-name keeps the marker
    assert [line.split()[:3] for line in first.splitlines()] == [line.split()[:3] for line in second.splitlines()]
    bm25 = {r.query.qid: [c.docid for c in r.candidates] for r in read_retrieval_results(candidates)}
    run = read_trec_run(tmp_path / "a" / "eval_dl19_identity+shuffle-7_top8.txt")
    orders = {qid: order(run, qid) for qid in bm25}
    assert all(sorted(orders[q]) == sorted(bm25[q]) and orders[q] != bm25[q] for q in bm25)
    assert permutation(8, "7", "q1") == permutation(8, "7", "q1") != permutation(8, "7", "q2")
    assert permutation(8, "8", "q1") != permutation(8, "7", "q1")


def test_shuffled_requests_renumber_ranks_and_keep_scores() -> None:
    (request,) = read_retrieval_results(DATA / "retrieve_results_dl19.json")[:1]
    (out,) = shuffled([request], "reverse")
    assert [c.docid for c in out.candidates] == [c.docid for c in request.candidates][::-1]
    assert [c.rank for c in out.candidates] == list(range(1, len(request.candidates) + 1))
    assert out.candidates[0].score == request.candidates[-1].score
    assert request.candidates[0].rank == 1  # the input is not modified


def test_a_shuffled_run_never_rescores_an_unshuffled_one(tmp_path: Path, candidates: Path, capsys) -> None:
    assert evaluate(tmp_path, candidates) == 0
    plain = tmp_path / "eval_dl19_identity_top8.txt"
    # a file by the shuffled run's name that holds the unshuffled run (an old or hand-copied file)
    twin = tmp_path / "eval_dl19_identity+shuffle-reverse_top8.txt"
    shutil.copy(plain, twin)
    shutil.copy(plain.with_name(plain.name + ".metrics.json"), twin.with_name(twin.name + ".metrics.json"))
    capsys.readouterr()
    assert evaluate(tmp_path, candidates, "--shuffle-input", "reverse") == 2
    assert "shuffle_input: None (run) vs 'reverse' (now)" in capsys.readouterr().err


def test_shuffle_values_and_names() -> None:
    assert parse_shuffle(None) is None and parse_shuffle("reverse") == "reverse" and parse_shuffle("013") == "13"
    for bad in ("sideways", "-1", "1.5", ""):
        with pytest.raises(InputError, match="expected 'reverse' or a non-negative integer seed"):
            parse_shuffle(bad)
    assert unshuffled_name("pe-rank+window_size-10+shuffle-reverse") == ("pe-rank+window_size-10", "reverse")
    assert unshuffled_name("dense+shuffle-42") == ("dense", "42")
    assert unshuffled_name("dense") == ("dense", None)
