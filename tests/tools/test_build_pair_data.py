"""``perank build-pair-data`` (:mod:`perank.tools.data.pair_groups`) on a few DL20 queries: the three teachers,
seeding, and the DL19 guards."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from helpers.paths import REPO
from perank.io import read_qrels, read_retrieval_results, read_topics, write_retrieval_results
from perank.tools.data import pair_groups
from perank.training.pairs import read_pair_groups
from perank.types import InputError, Query, Request

DATA = REPO / "data" / "msmarco-passage"
DL20 = DATA / "retrieve_results_dl20.json"
QRELS = DATA / "qrels.dl20-passage.txt"


@pytest.fixture(scope="module")
def builder() -> ModuleType:
    return pair_groups


def build(builder: ModuleType, out: Path, *args: str) -> list[dict]:
    argv = ["--retrieval-results", str(DL20), "--max-queries", "3", "--candidates-topk", "20", "-o", str(out)]
    assert builder.run(argv + list(args)) == 0
    read_pair_groups(out)  # what the training runners read: every row valid
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_qrels_teacher(builder: ModuleType, tmp_path: Path) -> None:
    rows = build(builder, tmp_path / "a.jsonl", "--teacher", "qrels", "--qrels", str(QRELS), "--max-negatives", "5")
    requests = {r.query.qid: r for r in read_retrieval_results(DL20)[:3]}
    qrels = read_qrels(QRELS)
    assert rows and all(len(r["neg"]) == 5 and "pos_scores" not in r for r in rows)
    for row in rows:
        cands = requests[row["qid"]].candidates[:20]
        grade = {c.text: qrels[row["qid"]].get(c.docid, 0) for c in cands}
        assert row["query"] == requests[row["qid"]].query.text
        assert all(grade[p] >= 1 for p in row["pos"]) and all(grade[n] < 1 for n in row["neg"])
        assert len(row["pos"]) == sum(1 for c in cands if qrels[row["qid"]].get(c.docid, 0) >= 1)
        order = [c.text for c in cands]
        assert [order.index(n) for n in row["neg"]] == sorted(order.index(n) for n in row["neg"])
    again = build(builder, tmp_path / "b.jsonl", "--teacher", "qrels", "--qrels", str(QRELS), "--max-negatives", "5")
    assert again == rows
    other_seed = build(
        builder,
        tmp_path / "d.jsonl",
        "--teacher",
        "qrels",
        "--qrels",
        str(QRELS),
        "--max-negatives",
        "5",
        "--seed",
        "1",
    )
    assert other_seed != rows
    graded = build(
        builder,
        tmp_path / "e.jsonl",
        "--teacher",
        "qrels",
        "--qrels",
        str(QRELS),
        "--min-grade",
        "2",
        "--teacher-scores",
    )
    assert all(min(r["pos_scores"]) >= 2 and max(r["neg_scores"]) < 2 for r in graded)


def test_run_teacher(builder: ModuleType, tmp_path: Path) -> None:
    requests = read_retrieval_results(DL20)[:3]
    run = tmp_path / "run.txt"
    # reversed first-stage order, and the 20th candidate of each query left out of the run
    run.write_text(
        "".join(
            f"{r.query.qid} Q0 {c.docid} {i + 1} {float(i)} t\n"
            for r in requests[:2]
            for i, c in enumerate(r.candidates[:19])
        )
    )
    rows = build(builder, tmp_path / "g.jsonl", "--teacher", "run", "--run", str(run), "--positives", "2")
    assert [r["qid"] for r in rows] == [r.query.qid for r in requests[:2]]  # the third is not in the run
    for row, req in zip(rows, requests):
        texts = [c.text for c in req.candidates]
        assert row["pos"] == [texts[17], texts[18]] and row["pos_scores"] == [17.0, 18.0]
        assert len(row["neg"]) == 15 and texts[19] not in row["neg"]
        assert row["neg_scores"] == [float(texts.index(n)) for n in row["neg"]]


def test_dense_teacher(builder: ModuleType, tmp_path: Path) -> None:
    rows = build(builder, tmp_path / "h.jsonl", "--teacher", "dense", "--candidates-topk", "6", "--max-negatives", "3")
    assert len(rows) == 3
    for row in rows:
        assert len(row["pos"]) == 1 and len(row["neg"]) == 3
        assert row["pos_scores"][0] >= max(row["neg_scores"]) and min(row["neg_scores"]) >= -1


def test_refuses_dl19_and_bad_options(builder: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    with pytest.raises(InputError, match="refusing: 3 queries are judged in"):
        build(builder, out, "--teacher", "qrels", "--qrels", str(QRELS), "--forbid-qrels", str(QRELS))
    dl19_text = next(iter(read_topics(DATA / "topics.dl19-passage.txt").values()))
    sneaky = tmp_path / "sneaky.jsonl"
    req = read_retrieval_results(DL20)[0]
    write_retrieval_results(sneaky, [Request(Query("new-1", f"  {dl19_text.upper()} "), req.candidates)])
    with pytest.raises(InputError, match=rf"refusing {sneaky}: 1 queries have the text of a held-out"):
        builder.run(["--retrieval-results", str(sneaky), "--teacher", "dense", "-o", str(out)])
    # the command (``perank build-pair-data``) says the same in one line, exit status 2
    assert builder.main(["--retrieval-results", str(sneaky), "--teacher", "dense", "-o", str(out)]) == 2
    with pytest.raises(InputError, match=r"refusing .*retrieve_results_dl20.json: 3 queries have the text"):
        build(builder, out, "--teacher", "dense", "--forbid-topics", str(DATA / "topics.dl20.txt"))
    for bad in (
        ["--teacher", "qrels"],
        ["--teacher", "dense", "--min-grade", "2"],
        ["--teacher", "dense", "--teacher-scores"],
        ["--teacher", "qrels", "--qrels", str(QRELS), "--embeddings", "x.pt"],
    ):
        with pytest.raises(SystemExit):
            build(builder, out, *bad)
    assert not out.exists()
