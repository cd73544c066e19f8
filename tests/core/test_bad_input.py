"""Every kind of bad input fails with a message that says what and where (one test per case)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from helpers.paths import REPO
from perank.cli import evaluate, trec_eval
from perank.io import read_qrels, read_retrieval_results, read_topics, read_trec_run
from perank.pipeline import run_pipeline
from perank.ranking.base import BaseReranker
from perank.runs import partial_path, run_file_name
from perank.training.jsonl import read_jsonl
from perank.types import Candidate, InputError, Request, Result

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


def test_repeated_docids_end_to_end_one_note_and_a_clean_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Each query's first occurrence is kept and ranked once; trec_eval.py reads the run (it refuses a docid
    twice for a query); --strict refuses the file, naming the file, line and docid."""
    cands = tmp_path / "dups.jsonl"
    cands.write_text(_line("1", ["a", "b", "a", "c"]) + "\n" + _line("2", ["x", "y", "y", "x"]) + "\n")
    qrels = tmp_path / "q.txt"
    qrels.write_text("1 0 a 1\n2 0 y 1\n")
    with caplog.at_level(logging.WARNING):
        code, err = _evaluate(capsys, tmp_path, "--retrieval-results", str(cands), "--qrels", str(qrels))
    assert code == 0, err
    notes = [r.getMessage() for r in caplog.records if "repeated" in r.getMessage()]
    assert notes == [
        f"{cands}: 3 docids repeated within a query's hits dropped, the first occurrence kept (line 1 docid a; "
        "line 2 docid y; line 2 docid x); --strict refuses them"
    ]
    run = tmp_path / "out" / run_file_name("dups", "pe-rank-smollm2-minilm", 100)
    if not run.exists():  # the default reranker falls back to dense where PE-Rank is not shipped
        run = next((tmp_path / "out").glob("eval_dups_*_top100.txt"))
    lines = [line.split() for line in run.read_text().splitlines()]
    assert sorted((q, d) for q, _, d, *_ in lines) == [("1", "a"), ("1", "b"), ("1", "c"), ("2", "x"), ("2", "y")]
    assert trec_eval.main(["--ranking", str(run), "--qrels", str(qrels), "--no-save"]) == 0
    capsys.readouterr()
    argv = ["--retrieval-results", str(cands), "--strict", "--reranker", "identity"]
    code, err = _evaluate(capsys, tmp_path, *argv)
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        f"error: {cands}:1: docid a appears twice for query 1 (hits 0 and 2); remove one, or leave out --strict to "
        "keep the first"
    )


def test_utf8_files_with_a_byte_order_mark_are_read(tmp_path: Path) -> None:
    bom = "\ufeff"
    cands = tmp_path / "c.jsonl"
    cands.write_text(bom + _line("1", ["a", "b"]) + "\n", encoding="utf-8")
    assert [c.docid for c in read_retrieval_results(cands)[0].candidates] == ["a", "b"]
    array = tmp_path / "c.json"
    array.write_text(bom + "[" + _line("1", ["a"]) + "]", encoding="utf-8")
    assert read_retrieval_results(array)[0].query.qid == "1"
    run, qrels, topics = tmp_path / "run.txt", tmp_path / "q.txt", tmp_path / "t.tsv"
    run.write_text(bom + "1 Q0 a 1 2.0 t\n", encoding="utf-8")
    qrels.write_text(bom + "1 0 a 1\n", encoding="utf-8")
    topics.write_text(bom + "1\tfleas\n", encoding="utf-8")
    assert read_trec_run(run) == {"1": {"a": 2.0}}
    assert read_qrels(qrels) == {"1": {"a": 1}}
    assert read_topics(topics) == {"1": "fleas"}
    rows = tmp_path / "train.jsonl"
    rows.write_text(bom + '{"query": "q"}\n', encoding="utf-8")
    assert read_jsonl(rows) == [(1, {"query": "q"})]
    # only a leading mark is skipped: one inside a text is the text's
    inner = tmp_path / "inner.jsonl"
    inner.write_text(_line("1", ["a"]).replace("query 1", "query\ufeff1") + "\n", encoding="utf-8")
    assert read_retrieval_results(inner)[0].query.text == "query\ufeff1"
