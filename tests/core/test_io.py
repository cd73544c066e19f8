"""Round trips of every file format, and the atomic-write guarantee the resumable pipeline relies on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.paths import REPO
from perank.io import (
    atomic_write,
    read_rank_llm_json,
    read_retrieval_results,
    read_trec_run,
    strictly_decreasing,
    write_retrieval_results,
    write_trec_run,
)
from perank.types import Candidate, Query, Request, Result

DL19_JSON = REPO / "data" / "msmarco-passage" / "retrieve_results_dl19.json"


def _request(qid: str, docids: list[str], scores: list[float]) -> Request:
    cands = [
        Candidate(docid=d, text=f"text of {d} é", score=s, rank=i + 1) for i, (d, s) in enumerate(zip(docids, scores))
    ]
    return Request(query=Query(qid=qid, text=f"query {qid}"), candidates=cands)


def test_jsonl_round_trip(tmp_path: Path) -> None:
    requests = [_request("1", ["a", "b", "c"], [3.0, 2.0, 1.0]), _request("2", ["d", "e"], [0.5, 0.25])]
    path = tmp_path / "r.jsonl"
    write_retrieval_results(path, requests)
    back = read_retrieval_results(path)
    assert [r.query for r in back] == [r.query for r in requests]
    for got, want in zip(back, requests):
        assert [(c.docid, c.text, c.score, c.rank) for c in got.candidates] == [
            (c.docid, c.text, c.score, c.rank) for c in want.candidates
        ]
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"query", "hits"}
    assert set(first["hits"][0]) == {"content", "qid", "docid", "rank", "score"}


def test_rank_llm_json_converts_to_jsonl(tmp_path: Path) -> None:
    requests = read_rank_llm_json(DL19_JSON)
    assert len(requests) == 43 and all(len(r.candidates) == 100 for r in requests)
    out = tmp_path / "dl19.jsonl"
    write_retrieval_results(out, requests)
    again = read_retrieval_results(out)
    assert [r.query.qid for r in again] == [r.query.qid for r in requests]
    assert [c.docid for c in again[0].candidates] == [c.docid for c in requests[0].candidates]
    assert again[5].candidates[7].text == requests[5].candidates[7].text  # text kept byte for byte
    assert isinstance(again[0].query.qid, str)  # rank_llm stores int qids


def test_trec_run_round_trip_makes_ties_strictly_decreasing(tmp_path: Path) -> None:
    result = Result(
        query=Query("7", "q"),
        candidates=[Candidate(d, "", s) for d, s in [("a", 1.0), ("b", 1.0), ("c", 1.0), ("d", 0.5), ("e", 0.9)]],
    )
    path = tmp_path / "run.txt"
    write_trec_run(path, [result], tag="t")
    run = read_trec_run(path)
    lines = path.read_text().splitlines()
    assert [ln.split()[2] for ln in lines] == ["a", "b", "c", "d", "e"]
    assert [ln.split()[3] for ln in lines] == ["1", "2", "3", "4", "5"]
    scores = [run["7"][d] for d in "abcde"]
    assert all(x > y for x, y in zip(scores, scores[1:]))
    # trec_eval sorts by score: the order it sees must be the order written
    assert sorted(run["7"], key=run["7"].get, reverse=True) == list("abcde")


def test_strictly_decreasing_keeps_order_and_rejects_nan() -> None:
    out = strictly_decreasing([2.0, 2.0, 3.0, -1.0])
    assert all(x > y for x, y in zip(out, out[1:]))
    assert out[0] == 2.0 and out[3] == -1.0
    with pytest.raises(ValueError):
        strictly_decreasing([1.0, float("nan")])


def test_atomic_write_keeps_old_file_when_writer_raises(tmp_path: Path) -> None:
    path = tmp_path / "keep.txt"
    path.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_write(path) as handle:
        handle.write("new, half written")
        raise RuntimeError("crash")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]  # no temporary left behind


def test_a_write_removes_temps_of_killed_writers_but_not_of_live_ones(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from perank.io import atomic_write

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # exited: its temp file is a leftover of a killed write
    orphan = tmp_path / f".run.txt.{dead_pid}.abc123.tmp"
    live = tmp_path / f".run.txt.{os.getppid()}.def456.tmp"  # a running process's write in progress
    other = tmp_path / f".other.txt.{dead_pid}.ghi789.tmp"  # another file's temp is not ours to touch
    for p in (orphan, live, other):
        p.write_text("partial")
    with atomic_write(tmp_path / "run.txt") as fh:
        fh.write("done\n")
    assert (tmp_path / "run.txt").read_text() == "done\n"
    assert not orphan.exists() and live.exists() and other.exists()
