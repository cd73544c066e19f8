"""Every kind of bad input fails with a message that says what and where (one test per case)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from perank.cli import evaluate, trec_eval
from perank.io import read_retrieval_results
from perank.pipeline import run_pipeline
from perank.ranking.base import BaseReranker
from perank.runs import partial_path, run_file_name
from perank.types import Candidate, InputError, Request, Result

REPO = Path(__file__).resolve().parents[1]
MS = REPO / "data" / "msmarco-passage"


def _line(qid: str, docids: list[str]) -> str:
    hits = [
        {"content": f"passage {d}", "qid": qid, "docid": d, "rank": i + 1, "score": 10.0 - i}
        for i, d in enumerate(docids)
    ]
    return json.dumps({"query": f"query {qid}", "hits": hits})


def _evaluate(capsys: pytest.CaptureFixture[str], tmp_path: Path, *argv: str) -> tuple[int, str]:
    code = evaluate.main([*argv, "--output-dir", str(tmp_path / "out"), "--no-progress"])
    return code, capsys.readouterr().err


def test_malformed_json_line_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "cands.jsonl"
    bad.write_text(_line("1", ["a", "b"]) + "\n" + '{"query": "q2", "hits": [\n')
    code, err = _evaluate(
        capsys, tmp_path, "--datasets", "dl19", "--reranker", "identity", "--retrieval-results", str(bad)
    )
    assert code == 2
    assert f"{bad}:2" in err and "malformed JSON" in err


def test_unknown_dataset_lists_known_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _evaluate(capsys, tmp_path, "--datasets", "dl19", "msmarco-dev", "--reranker", "identity")
    assert code == 2
    assert "unknown dataset 'msmarco-dev'" in err and "dl19" in err and "covid" in err
    assert not (tmp_path / "out").exists()  # failed before anything ran


def test_run_with_docid_absent_from_candidates(tmp_path: Path) -> None:
    class Rogue(BaseReranker):
        name = "rogue"

        def rerank_within_budget(self, requests: list[Request]) -> list[Result]:
            out = []
            for r in requests:
                cands = [Candidate(c.docid, c.text, -i) for i, c in enumerate(r.candidates)]
                cands[-1] = Candidate("9999999", "", -1000.0)  # a document that was never a candidate
                out.append(Result(r.query, cands))
            return out

    cands = tmp_path / "cands.jsonl"
    cands.write_text(_line("19335", ["a", "b", "c"]) + "\n")
    with pytest.raises(InputError, match=r"query 19335: docid 9999999 is not among"):
        run_pipeline("dl19", Rogue(), retrieval_results=cands, output_dir=tmp_path, show_progress=False)
    run = tmp_path / run_file_name("dl19", "rogue", 100)
    assert not run.exists()
    assert partial_path(run).read_text().count("\n") == 1  # only the header: nothing bad was saved


def test_missing_qrels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = MS / "trec_results_dl19.txt"
    missing = tmp_path / "no-such-qrels.txt"
    assert trec_eval.main(["--dataset", "dl19", "--ranking", str(run), "--qrels", str(missing), "--no-save"]) == 2
    assert f"{missing}: qrels file not found" in capsys.readouterr().err
    # a dataset that ships no qrels says so, and how to get them
    assert trec_eval.main(["--dataset", "robust04", "--ranking", str(run), "--no-save"]) == 2
    assert "ships no qrels" in capsys.readouterr().err


def test_empty_hit_list(tmp_path: Path) -> None:
    path = tmp_path / "cands.jsonl"
    path.write_text(_line("1", ["a"]) + "\n" + json.dumps({"query": "q2", "hits": []}) + "\n")
    with pytest.raises(InputError, match=rf"{path}:2: empty hit list"):
        read_retrieval_results(path)


def test_duplicate_docids_dropped_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "cands.jsonl"
    path.write_text(_line("1", ["a", "b", "a", "c", "b"]) + "\n" + _line("2", ["x", "x"]) + "\n")
    with caplog.at_level(logging.WARNING):
        requests = read_retrieval_results(path)
    assert [c.docid for c in requests[0].candidates] == ["a", "b", "c"]
    assert [c.docid for c in requests[1].candidates] == ["x"]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1, warnings  # one note for the file, not one per duplicate
    assert f"{path}: 3 docids repeated within a query's hits dropped" in warnings[0]
    assert "line 1 docid a; line 1 docid b; line 2 docid x" in warnings[0]


def test_duplicate_docids_refused_when_strict(tmp_path: Path) -> None:
    path = tmp_path / "cands.jsonl"
    path.write_text(_line("1", ["a", "b"]) + "\n" + _line("2", ["x", "y", "x"]) + "\n")
    with pytest.raises(InputError, match=rf"{path}:2: docid x appears twice for query 2 \(hits 0 and 2\)"):
        read_retrieval_results(path, strict=True)
    array = tmp_path / "cands.json"
    array.write_text("[" + _line("1", ["a", "a"]) + "]")
    with pytest.raises(InputError, match=rf"{array}: item 0: docid a appears twice"):
        read_retrieval_results(array, strict=True)


def test_non_utf8_text_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "cands.jsonl"
    path.write_bytes(
        _line("1", ["a"]).encode() + b"\n" + _line("2", ["b"]).encode().replace(b"passage", b"pass\xffage")
    )
    with pytest.raises(InputError, match=rf"{path}:2: not valid UTF-8"):
        read_retrieval_results(path)


def test_unknown_reranker_lists_known_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _evaluate(capsys, tmp_path, "--datasets", "dl19", "--reranker", "gpt-17")
    assert code == 2
    assert "unknown reranker 'gpt-17'" in err and "identity" in err and "dense" in err
