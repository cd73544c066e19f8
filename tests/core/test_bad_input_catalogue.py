"""A catalogue of bad inputs, as a new user would make them, and the one line each command prints for them.

Every case runs the real entry point in-process. A refused input must end with exit status 2 and exactly one
line on stderr that starts with ``error:`` and says what is wrong (the file and line, the option, the name). An
input that is handled rather than refused (a query longer than the reranker reads, a docid repeated in a hit
list, a byte-order mark) must end with status 0 and say so in exactly one note for the run, never one per
query. None of these cases loads a large model: options and files are checked before any model is loaded, and
the long-query cases use the tiny cross-encoder of ``tests/fixtures/peers``. The Python API's cases
(:data:`API_CASES`) are refused with an :class:`InputError` naming the argument and position.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from helpers.paths import PEERS, REPO
from perank import Reranker
from perank.cli import evaluate, fuse, retrieve, train, trec_eval
from perank.cli import main as perank
from perank.compare import cli as compare
from perank.types import InputError

MS = REPO / "data" / "msmarco-passage"
HIT = '{"content": "c", "qid": "1", "docid": "d1", "score": 1.0}'
TINY_CE = str(PEERS / "bge-reranker-tiny")
LONG_QUERY = ("how long do fleas live? " * 9000)[:200_000]
LONG_LINE = json.dumps({"query": LONG_QUERY, "hits": [json.loads(HIT)]}) + "\n"


@dataclass(frozen=True)
class Case:
    """``files`` are written under a temporary folder (``{tmp}`` in argv and contents is replaced by it).
    ``code`` 2: ``expected`` is in the one error line; ``code`` 0: ``expected`` is in the run's one note (or, when
    empty, no note at all)."""

    name: str
    command: Callable[[list[str]], int]
    argv: tuple[str, ...]
    expected: str
    files: tuple[tuple[str, str | bytes], ...] = ()
    code: int = 2


EVAL = ("--reranker", "identity", "--no-progress", "--output-dir", "{tmp}/out")
#: two judged queries and runs over them, for the compare cases
QRELS = ("q.txt", "1 0 d1 1\n1 0 d2 0\n2 0 d3 1\n")
RUN_A = ("a.txt", "1 Q0 d1 1 2.0 a\n1 Q0 d2 2 1.0 a\n2 Q0 d3 1 2.0 a\n")
RUN_B = ("b.txt", "1 Q0 d2 1 2.0 b\n1 Q0 d1 2 1.0 b\n2 Q0 d3 1 2.0 b\n")
CMP = ("--qrels", "{tmp}/q.txt", "-o", "{tmp}/cmp/out")
CASES = [
    Case("unknown reranker", evaluate.main, ("--reranker", "nope"), "unknown reranker 'nope'"),
    Case("misspelled reranker", evaluate.main, ("--reranker", "densse"), "(did you mean dense?)"),
    Case(
        "misspelled option",
        evaluate.main,
        ("--reranker", "dense", "-o", "batch_sise=4"),
        "reranker 'dense' has no option 'batch_sise' (did you mean batch_size?)",
    ),
    Case(
        "option of the wrong type",
        evaluate.main,
        ("--reranker", "dense", "-o", "batch_size=four"),
        "option batch_size='four': expected int, got str",
    ),
    Case("option without a value", evaluate.main, ("--reranker", "dense", "-o", "oops"), "expected KEY=VALUE"),
    Case("unknown dataset", evaluate.main, ("--datasets", "dl2019", *EVAL), "unknown dataset 'dl2019'"),
    Case(
        "missing candidates file",
        evaluate.main,
        ("--retrieval-results", "{tmp}/nope.jsonl", *EVAL),
        "nope.jsonl: file not found",
    ),
    Case(
        "malformed candidates line",
        evaluate.main,
        ("--retrieval-results", "{tmp}/c.jsonl", *EVAL),
        "c.jsonl:2: malformed JSON",
        (("c.jsonl", '{"query": "q", "hits": [' + HIT + "]}\n{oops\n"),),
    ),
    Case(
        "NaN score in candidates",
        evaluate.main,
        ("--retrieval-results", "{tmp}/c.jsonl", *EVAL),
        "c.jsonl:1: hit 0 score nan is not finite",
        (("c.jsonl", '{"query": "q", "hits": [' + HIT.replace("1.0", "NaN") + "]}\n"),),
    ),
    Case(
        "empty hit list",
        evaluate.main,
        ("--retrieval-results", "{tmp}/c.jsonl", *EVAL),
        "c.jsonl:1: empty hit list for query 'q'",
        (("c.jsonl", '{"query": "q", "hits": []}\n'),),
    ),
    Case(
        "missing qrels file",
        evaluate.main,
        ("--retrieval-results", str(MS / "retrieve_results_dl19.json"), "--qrels", "{tmp}/q.txt", *EVAL),
        "q.txt: qrels file not found",
    ),
    Case(
        "output folder under a file",
        evaluate.main,
        ("--datasets", "dl19", "--reranker", "identity", "--output-dir", "{tmp}/f/sub"),
        "--output-dir {tmp}/f/sub: cannot create it",
        (("f", "a file"),),
    ),
    Case(
        "two datasets, one candidates file",
        evaluate.main,
        ("--datasets", "dl19", "dl20", "--retrieval-results", str(MS / "retrieve_results_dl19.json"), *EVAL),
        "apply to one dataset",
    ),
    Case("topk of zero", evaluate.main, ("--datasets", "dl19", "--topk", "0", *EVAL), "topk must be at least 1"),
    Case("batch size of zero", evaluate.main, ("--datasets", "dl19", "--batch-size", "0", *EVAL), "at least 1"),
    Case(
        "missing checkpoint folder",
        evaluate.main,
        ("--reranker", "pe-rank", "--model-path", "{tmp}/no-such-ckpt"),
        "no-such-ckpt: no such checkpoint folder",
    ),
    Case(
        "checkpoint of another family",
        evaluate.main,
        ("--reranker", "pe-rank", "--model-path", "{tmp}/bert"),
        "bert: not a PE-Rank checkpoint",
        (("bert/config.json", '{"model_type": "bert"}'),),
    ),
    Case(
        "truncated weight file",
        evaluate.main,
        ("--reranker", "pe-rank", "--model-path", "{tmp}/ckpt"),
        "ckpt/projector.safetensors: truncated",
        (("ckpt/perank_config.json", "{}"), ("ckpt/projector.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{")),
    ),
    Case("zero window", evaluate.main, ("--reranker", "pe-rank", "--window-size", "0"), "window_size must be a"),
    Case(
        "unknown decode mode",
        evaluate.main,
        ("--reranker", "pe-rank", "-o", "decode_mode=beam"),
        "unknown decode mode 'beam'",
    ),
    Case("missing run file", trec_eval.main, ("--ranking", "{tmp}/run.txt"), "run.txt: file not found"),
    Case(
        "run line with 5 fields",
        trec_eval.main,
        ("--ranking", "{tmp}/run.txt"),
        "run.txt:2: expected 'qid Q0 docid rank score tag', got 5 fields",
        (("run.txt", "1 Q0 d1 1 2.0 t\n1 Q0 d2 2 1.0\n"),),
    ),
    Case(
        "infinite score in a run",
        trec_eval.main,
        ("--ranking", "{tmp}/run.txt"),
        "run.txt:1: score 'inf' is not finite",
        (("run.txt", "1 Q0 d1 1 inf t\n"),),
    ),
    Case(
        "document twice in a run",
        trec_eval.main,
        ("--ranking", "{tmp}/run.txt"),
        "run.txt:2: docid d1 appears twice for query 1",
        (("run.txt", "1 Q0 d1 1 2.0 t\n1 Q0 d1 2 1.0 t\n"),),
    ),
    Case(
        "dataset without qrels",
        trec_eval.main,
        ("--dataset", "robust04", "--ranking", "{tmp}/run.txt"),
        "robust04",
        (("run.txt", "1 Q0 d1 1 2.0 t\n"),),
    ),
    Case(
        "non-integer grade in qrels",
        trec_eval.main,
        ("--ranking", "{tmp}/run.txt", "--qrels", "{tmp}/q.txt"),
        "q.txt:1: grade 'high' is not an integer",
        (("run.txt", "1 Q0 d1 1 2.0 t\n"), ("q.txt", "1 0 d1 high\n")),
    ),
    Case(
        "compare one run only",
        compare.main,
        ("{tmp}/a.txt", *CMP),
        "compare needs at least two runs, got 1 ({tmp}/a.txt)",
        (QRELS, RUN_A),
    ),
    Case(
        "compare runs of different queries, strictly",
        compare.main,
        ("{tmp}/a.txt", "{tmp}/c.txt", "--strict", *CMP),
        "the runs answer different judged queries (c lacks 1); drop --strict",
        (QRELS, RUN_A, ("c.txt", "1 Q0 d2 1 2.0 c\n1 Q0 d1 2 1.0 c\n")),
    ),
    Case(
        "compare a run of another dataset",
        compare.main,
        ("{tmp}/a.txt", "{tmp}/eval_dl20_x_top100.txt", *CMP),
        "system 'x' ({tmp}/eval_dl20_x_top100.txt): only 1 of its 3 queries are judged in {tmp}/q.txt",
        (QRELS, RUN_A, ("eval_dl20_x_top100.txt", "1 Q0 d1 1 2.0 x\n8 Q0 d1 1 2.0 x\n9 Q0 d1 1 2.0 x\n")),
    ),
    Case(
        "compare a run with a NaN score",
        compare.main,
        ("{tmp}/a.txt", "{tmp}/n.txt", *CMP),
        "n.txt:2: score 'nan' is not finite",
        (QRELS, RUN_A, ("n.txt", "1 Q0 d1 1 2.0 n\n1 Q0 d2 2 nan n\n")),
    ),
    Case(
        "compare two systems of one name",
        compare.main,
        ("{tmp}/a.txt", "{tmp}/b.txt", "{tmp}/other/a.txt", *CMP),
        "two runs are both named 'a' ({tmp}/a.txt and {tmp}/other/a.txt); rename one with --name",
        (QRELS, RUN_A, RUN_B, ("other/a.txt", RUN_B[1])),
    ),
    Case("compare without qrels", compare.main, ("{tmp}/a.txt", "{tmp}/b.txt"), "give --dataset NAME", (RUN_A, RUN_B)),
    Case(
        "compare against an unknown baseline",
        compare.main,
        ("{tmp}/a.txt", "{tmp}/b.txt", "--baseline", "bb", *CMP),
        "--baseline 'bb': no such system (did you mean b?)",
        (QRELS, RUN_A, RUN_B),
    ),
    Case(
        "compare with a misspelt measure",
        compare.main,
        ("{tmp}/a.txt", "{tmp}/b.txt", "--measures", "ndcg10", *CMP),
        "--measures 'ndcg10': expected NAME@K",
        (QRELS, RUN_A, RUN_B),
    ),
    Case(
        "compare a glob that matches nothing", compare.main, ("{tmp}/eval_*", *CMP), "eval_*: no file matches", (QRELS,)
    ),
    Case(
        "shuffle the input sideways",
        evaluate.main,
        ("--datasets", "dl19", "--shuffle-input", "sideways", *EVAL),
        "--shuffle-input 'sideways': expected 'reverse' or a non-negative integer seed",
    ),
    Case("fuse one run", fuse.main, ("{tmp}/a.txt", "-o", "{tmp}/f.txt"), "fuse needs at least two runs", (RUN_A,)),
    Case("unknown perank command", perank.main, ("comapre",), "unknown command 'comapre' (did you mean compare?)"),
    Case(
        "retrieval for an unknown dataset",
        retrieve.main,
        ("--dataset", "nope-set"),
        "unknown dataset 'nope-set'",
    ),
    Case(
        "unknown training family", train.main, ("--family", "nope"), "--family 'nope': no training runner by that name"
    ),
    Case(
        "docid repeated in a query's hits",
        evaluate.main,
        ("--retrieval-results", "{tmp}/c.jsonl", *EVAL),
        "c.jsonl: 1 docid repeated within a query's hits dropped, the first occurrence kept (line 1 docid d1)",
        (("c.jsonl", '{"query": "q", "hits": [' + HIT + ", " + HIT.replace("1.0", "0.5") + "]}\n"),),
        code=0,
    ),
    Case(
        "docid repeated in a query's hits, --strict",
        evaluate.main,
        ("--retrieval-results", "{tmp}/c.jsonl", "--strict", *EVAL),
        "c.jsonl:1: docid d1 appears twice for query 1 (hits 0 and 1); remove one, or leave out --strict",
        (("c.jsonl", '{"query": "q", "hits": [' + HIT + ", " + HIT.replace("1.0", "0.5") + "]}\n"),),
    ),
    Case(
        "200,000-character query",
        evaluate.main,
        ("--retrieval-results", "{tmp}/c.jsonl", "--reranker", "cross-encoder", "--model-path", TINY_CE, *EVAL[2:]),
        "c: 1 query cut to 384 tokens (the reranker's query budget; see --max-query-length)",
        (("c.jsonl", LONG_LINE),),
        code=0,
    ),
    Case(
        "200,000-character query, --max-query-length 64",
        evaluate.main,
        (
            "--retrieval-results",
            "{tmp}/c.jsonl",
            "--reranker",
            "cross-encoder",
            "--model-path",
            TINY_CE,
            "--max-query-length",
            "64",
            *EVAL[2:],
        ),
        "c: 1 query cut to 64 tokens",
        (("c.jsonl", LONG_LINE),),
        code=0,
    ),
    Case(
        "query budget of zero",
        evaluate.main,
        ("--retrieval-results", "{tmp}/c.jsonl", "--max-query-length", "0", *EVAL),
        "max_query_length must be a positive integer (tokens), got 0",
    ),
    Case(
        "query budget for a reranker that reads no query",
        evaluate.main,
        ("--retrieval-results", "{tmp}/c.jsonl", "--max-query-length", "64", *EVAL),
        "note: reranker 'identity' does not use --max-query-length; ignored",
        (("c.jsonl", '{"query": "q", "hits": [' + HIT + "]}\n"),),
        code=0,
    ),
    Case(
        "candidates file with a UTF-8 byte-order mark",
        evaluate.main,
        ("--retrieval-results", "{tmp}/c.jsonl", *EVAL),
        "",
        (("c.jsonl", b"\xef\xbb\xbf" + ('{"query": "q", "hits": [' + HIT + "]}\n").encode()),),
        code=0,
    ),
    Case(
        "missing training data",
        train.main,
        ("--data_path", "{tmp}/train.jsonl", "--output_dir", "{tmp}/o", "--use_cpu"),
        "train.jsonl",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_clear_line(case: Case, tmp_path: Path, capsys, caplog) -> None:
    for name, content in case.files:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content.replace("{tmp}", str(tmp_path)))
    argv = [a.replace("{tmp}", str(tmp_path)) for a in case.argv]
    with caplog.at_level(logging.WARNING):
        code = case.command(argv)
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    # a note is a warning logged for the run (evaluate.py prints it as one stderr line) or a "note:" line
    notes = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    notes += [line for line in err if line.startswith("note: ")]
    expected = case.expected.replace("{tmp}", str(tmp_path))
    assert code == case.code, err
    if case.code == 2:
        assert len(errors) == 1, err
        assert expected in errors[0]
    else:
        assert errors == [] and len(notes) == (1 if expected else 0), notes
        assert all(expected in note for note in notes)


#: the Python API's bad inputs: (call, the InputError's message)
API_CASES: list[tuple[str, Callable[[Reranker], Any], str]] = [
    ("query None", lambda r: r.rank(None, ["a", "b"]), "query: expected a text or a Query, got NoneType"),
    ("query a number", lambda r: r.rank(7, ["a"]), "query: expected a text or a Query, got int"),
    ("document None", lambda r: r.rank("q", ["a", None]), "docs[1]: expected a text or a Candidate, got NoneType"),
    ("docs one string", lambda r: r.rank("q", "a b"), "docs: expected a list of texts or Candidates, not one string"),
    ("docs None", lambda r: r.rank("q", None), "docs: expected a list of texts or Candidates, not NoneType"),
    ("lone surrogate", lambda r: r.rank("q\ud800", ["a"]), "query: not valid Unicode text (lone surrogate U+D800"),
    ("pair with None", lambda r: r.compute_score([("q", None)]), "pairs[0][1] (passage): expected a text, got None"),
]


@pytest.fixture(scope="module")
def scorer() -> Reranker:
    """The cheapest reranker that scores pairs: dense over the packaged MiniLM."""
    return Reranker("dense")


@pytest.mark.parametrize("case", API_CASES, ids=[c[0] for c in API_CASES])
def test_bad_api_input_is_refused_by_name(case: tuple[str, Callable[[Reranker], Any], str], scorer: Reranker) -> None:
    _, call, expected = case
    with pytest.raises(InputError) as info:
        call(scorer)
    assert expected in str(info.value)


def test_catalogue_is_long_enough() -> None:
    assert len(CASES) >= 25 and len({c.name for c in CASES}) == len(CASES)
    json.dumps([c.name for c in CASES])
