"""``perank build-rank-data --candidates-only``: the passages the windows draw, for a teacher run that scores only
them; a second build with the same flags and ``--teacher run`` labels the very same windows; DL19 stays out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.paths import REPO
from perank.io import read_retrieval_results
from perank.tools.data import rank_windows

DATA = REPO / "data" / "msmarco-passage"
#: two DL20 queries, windows of 5 from the top 30: the first window the top 5, then random 5-subsets
WINDOWS = ["--max-queries", "2", "--candidates-topk", "30", "--window-size", "5", "--windows-per-query", "4"]
DL20 = ["--retrieval-results", str(DATA / "retrieve_results_dl20.json"), *WINDOWS]
NO_DL19 = ["--forbid-qrels", str(DATA / "qrels.dl19-passage.txt")]


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_run(path: Path, scores: dict[str, dict[str, float]]) -> Path:
    lines = [f"{q} Q0 {d} 0 {s} teacher" for q, docs in scores.items() for d, s in docs.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("drawn") / "dl20_windows.jsonl"
    assert rank_windows.main([*DL20, "--candidates-only", *NO_DL19, "-o", str(out)]) == 0
    return out


def test_candidates_only_keeps_the_drawn_passages_in_first_stage_order(drawn: Path) -> None:
    full = {r.query.qid: r for r in read_retrieval_results(DATA / "retrieve_results_dl20.json")[:2]}
    kept = read_retrieval_results(drawn)
    assert [r.query.qid for r in kept] == list(full)
    for r in kept:
        ranks = [c.rank for c in r.candidates]
        assert ranks == sorted(ranks) and max(ranks) <= 30  # first-stage order, from the top 30 only
        assert [c.docid for c in r.candidates[:5]] == [c.docid for c in full[r.query.qid].candidates[:5]]
        assert 5 < len(r.candidates) <= 20  # the top 5 and up to three more windows of 5
        assert r.query.text == full[r.query.qid].query.text


def test_a_run_over_the_drawn_passages_labels_the_same_windows(drawn: Path, tmp_path: Path, capsys) -> None:
    """The teacher scores only the drawn passages; every window of the labelling build is made of them, ranked
    by the run's scores, and the windows are those a build with another teacher draws."""
    kept = read_retrieval_results(drawn)
    # a teacher unlike the first stage: the deeper the BM25 rank, the higher the score
    scores = {r.query.qid: {c.docid: float(c.rank) for c in r.candidates} for r in kept}
    run = write_run(tmp_path / "teacher.trec", scores)
    capsys.readouterr()
    by_run, by_qrels = tmp_path / "run.jsonl", tmp_path / "qrels.jsonl"
    assert rank_windows.main([*DL20, "--teacher", "run", "--run", str(run), *NO_DL19, "-o", str(by_run)]) == 0
    assert "warning" not in capsys.readouterr().err
    qrels = ["--teacher", "qrels", "--qrels", str(DATA / "qrels.dl20-passage.txt")]
    assert rank_windows.main([*DL20, *qrels, *NO_DL19, "-o", str(by_qrels)]) == 0
    rows, other = read_rows(by_run), read_rows(by_qrels)
    assert len(rows) == len(other) > 2
    docid = {r.query.qid: {c.text: c.docid for c in r.candidates} for r in kept}
    for row, same in zip(rows, other):
        texts = row["extra_texts"][:5]
        assert texts == same["extra_texts"][:5]  # the same window, in the same input order
        docs = [docid[row["qid"]][t] for t in texts]  # KeyError: a window passage the teacher never saw
        ranked = [scores[row["qid"]][docs[i]] for i in row["ranking"]]
        assert ranked == sorted(ranked, reverse=True)
    assert any(row["ranking"] != list(range(5)) for row in rows)


def test_passages_the_run_does_not_score_are_counted(drawn: Path, tmp_path: Path, capsys) -> None:
    top2 = {r.query.qid: {c.docid: 1.0 / c.rank for c in r.candidates[:2]} for r in read_retrieval_results(drawn)}
    run = write_run(tmp_path / "partial.trec", top2)
    capsys.readouterr()
    assert rank_windows.main([*DL20, "--teacher", "run", "--run", str(run), "-o", str(tmp_path / "rows.jsonl")]) == 0
    err = capsys.readouterr().err
    assert "warning: " in err and "window passages have no score in" in err and "ranked last" in err


def test_candidates_only_refuses_dl19(tmp_path: Path, capsys) -> None:
    out = tmp_path / "dl19_windows.jsonl"
    dl19 = ["--retrieval-results", str(DATA / "retrieve_results_dl19.json"), *WINDOWS]
    assert rank_windows.main([*dl19, "--candidates-only", *NO_DL19, "-o", str(out)]) == 2
    assert "refusing: 2 queries are judged in" in capsys.readouterr().err
    assert not out.exists()


def test_a_teacher_and_candidates_only_exclude_each_other(tmp_path: Path) -> None:
    out = ["-o", str(tmp_path / "x.jsonl")]
    with pytest.raises(SystemExit):
        rank_windows.main([*DL20, "--candidates-only", "--teacher", "qrels", *out])
    with pytest.raises(SystemExit):
        rank_windows.main([*DL20, *out])
    assert not (tmp_path / "x.jsonl").exists()
