"""Property-based fuzzing of every file reader: a correct parse or an InputError naming the file, nothing else.

Files are generated three ways: arbitrary bytes, arbitrary text lines, and valid files with random
mutations (characters deleted, inserted or replaced; a field swapped for an arbitrary JSON value). For each,
the reader must either return (and what it returns is well-formed) or raise :class:`InputError` whose message
names the file; any other exception, or a hang (Hypothesis' deadline), fails. Writers round-trip what readers
read. Bounded by ``FUZZ_EXAMPLES`` per property so the whole module stays well under a minute.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perank.io import (
    read_corpus,
    read_qrels,
    read_rank_llm_json,
    read_retrieval_results,
    read_topics,
    read_trec_run,
    write_retrieval_results,
    write_trec_run,
)
from perank.types import Candidate, InputError, Query, Request, Result

FUZZ_EXAMPLES = 120
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=2000,
    derandomize=True,  # the same cases on every run: CI failures reproduce
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# ------------------------------------------------------------------ valid samples of every format

RETRIEVAL_JSONL = (
    '{"query": "how long is life cycle of flea", "hits": [{"content": "Fleas live...", "qid": "1114819", '
    '"docid": "8432153", "rank": 1, "score": 16.95}, {"content": "Eggs hatch", "qid": "1114819", "docid": "9", '
    '"rank": 2, "score": 12.5}]}\n'
    '{"query": "cost of concrete", "hits": [{"content": "About $5", "qid": 2, "docid": 7, "score": 3}]}\n'
)
RANK_LLM_JSON = "[" + ",".join(RETRIEVAL_JSONL.strip().splitlines()) + "]\n"
TREC_RUN = "1 Q0 d1 1 2.5 tag\n1 Q0 d2 2 1.25 tag\n2 Q0 d9 1 -0.5 tag\n"
QRELS = "1 0 d1 2\n1 0 d2 0\n2 0 d9 1\n"
BEIR_QRELS = "query-id\tcorpus-id\tscore\n1\td1\t1\n2\td9\t0\n"
TOPICS_TSV = "1\thow long is life cycle of flea\n2\tcost of concrete\n"
TOPICS_JSONL = '{"_id": "1", "text": "how long is life cycle of flea"}\n{"_id": 2, "text": "cost"}\n'
CORPUS = '{"_id": "d1", "title": "Fleas", "text": "Fleas live..."}\n{"_id": "d2", "text": "Eggs"}\n'


def _read_all(reader: Callable[[Path], Any]) -> Callable[[Path], Any]:
    return lambda path: list(reader(path))


#: name -> (reader, a valid sample)
READERS: dict[str, tuple[Callable[[Path], Any], str]] = {
    "retrieval-jsonl": (read_retrieval_results, RETRIEVAL_JSONL),
    "rank-llm-json": (read_rank_llm_json, RANK_LLM_JSON),
    "trec-run": (read_trec_run, TREC_RUN),
    "qrels": (read_qrels, QRELS),
    "beir-qrels": (read_qrels, BEIR_QRELS),
    "topics-tsv": (read_topics, TOPICS_TSV),
    "topics-jsonl": (read_topics, TOPICS_JSONL),
    "beir-corpus": (_read_all(read_corpus), CORPUS),
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def mutated(draw: st.DrawFn, sample: str) -> bytes:
    """A valid sample with 1-4 random edits: characters removed/inserted/replaced, or a JSON field replaced."""
    text = sample
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.sampled_from(["delete", "insert", "replace", "json-field", "line-drop", "nan"]))
        pos = draw(st.integers(min_value=0, max_value=max(0, len(text) - 1)))
        if kind == "delete":
            text = text[:pos] + text[pos + draw(st.integers(min_value=1, max_value=12)) :]
        elif kind == "insert":
            text = text[:pos] + draw(st.text(max_size=6)) + text[pos:]
        elif kind == "replace":
            text = (
                text[:pos]
                + draw(st.sampled_from(["\t", " ", "\n", '"', "{", "]", "\x00", "é", "-1e999"]))
                + text[pos + 1 :]
            )
        elif kind == "line-drop":
            lines = text.splitlines(keepends=True)
            if lines:
                del lines[pos % len(lines)]
            text = "".join(lines)
        elif kind == "nan":
            text = text.replace(
                draw(st.sampled_from(["16.95", "2.5", "3", "1", "0"])),
                draw(st.sampled_from(["NaN", "Infinity", "nan", "inf", "-inf"])),
                1,
            )
        else:
            lines = text.splitlines(keepends=True)
            idx = pos % max(1, len(lines))
            try:
                obj = json.loads(lines[idx])
            except (json.JSONDecodeError, IndexError):
                continue
            target = obj[0] if isinstance(obj, list) and obj else obj
            if isinstance(target, dict) and target:
                key = draw(st.sampled_from(sorted(target)))
                if isinstance(target[key], list) and target[key] and isinstance(target[key][0], dict):
                    target = target[key][0]
                    key = draw(st.sampled_from(sorted(target)))
                target[key] = draw(json_values)
            lines[idx] = json.dumps(obj, allow_nan=True) + "\n"
            text = "".join(lines)
    encoding = draw(st.sampled_from(["utf-8", "latin-1"]))
    return text.encode(encoding, errors="replace")


def file_contents(sample: str) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200).map(lambda t: t.encode("utf-8")),
        st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40), max_size=6).map(
            lambda lines: "\n".join(lines).encode("utf-8")
        ),
        mutated(sample),
    )


def check_reader(reader: Callable[[Path], Any], content: bytes, suffix: str = ".txt") -> Any:
    """Run ``reader`` on ``content``: a result, or an InputError that names the file; anything else fails."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"input{suffix}"
        path.write_bytes(content)
        try:
            return reader(path)
        except InputError as exc:
            assert str(path) in str(exc), f"error does not name the file: {exc}"
            assert "\n" not in str(exc)
            return None


def finite_scores(parsed: Any) -> None:
    """Whatever a reader returns holds no NaN or infinite score."""
    if isinstance(parsed, list) and parsed and isinstance(parsed[0], Request):
        assert all(math.isfinite(c.score) for r in parsed for c in r.candidates)
    if isinstance(parsed, dict):
        for docs in parsed.values():
            if isinstance(docs, dict):
                assert all(math.isfinite(float(v)) for v in docs.values())


@pytest.mark.parametrize("name", sorted(READERS))
def test_valid_samples_parse(name: str) -> None:
    reader, sample = READERS[name]
    parsed = check_reader(reader, sample.encode())
    assert parsed, f"the valid {name} sample did not parse"


@pytest.mark.parametrize("name", sorted(READERS))
def test_fuzzed_files_parse_or_fail_cleanly(name: str) -> None:
    reader, sample = READERS[name]

    @FUZZ
    @given(content=file_contents(sample))
    def run(content: bytes) -> None:
        finite_scores(check_reader(reader, content))

    run()


def test_gzip_files_that_are_not_gzip_fail_cleanly() -> None:
    for reader in (read_topics, read_qrels, _read_all(read_corpus), read_rank_llm_json):
        assert check_reader(reader, b"not gzip at all\n", suffix=".gz") is None


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_scores_are_refused(literal: str, tmp_path: Path) -> None:
    run = tmp_path / "run.txt"
    run.write_text(f"1 Q0 d1 1 {literal.lower()} tag\n")
    with pytest.raises(InputError, match=r"run.txt:1: score .* is not finite"):
        read_trec_run(run)
    jsonl = tmp_path / "cands.jsonl"
    hit = '{"content": "c", "qid": "1", "docid": "d", "score": ' + literal + "}"
    jsonl.write_text('{"query": "q", "hits": [' + hit + "]}\n")
    with pytest.raises(InputError, match=r"cands.jsonl:1: hit 0 score .* is not finite"):
        read_retrieval_results(jsonl)


# ------------------------------------------------------------------ writers round-trip what readers read

ids = st.text(
    alphabet=st.characters(whitelist_categories=["L", "N"], whitelist_characters="-_."), min_size=1, max_size=8
)
texts = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30)
scores = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@st.composite
def requests(draw: st.DrawFn) -> list[Request]:
    qids = draw(st.lists(ids, min_size=1, max_size=4, unique=True))
    out = []
    for qid in qids:
        docids = draw(st.lists(ids, min_size=1, max_size=5, unique=True))
        cands = [Candidate(docid=d, text=draw(texts), score=draw(scores), rank=i + 1) for i, d in enumerate(docids)]
        out.append(Request(query=Query(qid=qid, text=draw(texts)), candidates=cands))
    return out


@FUZZ
@given(reqs=requests())
def test_retrieval_results_round_trip(reqs: list[Request]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.jsonl"
        write_retrieval_results(path, reqs)
        back = read_retrieval_results(path)
    assert [(r.query, [(c.docid, c.text, c.score, c.rank) for c in r.candidates]) for r in back] == [
        (r.query, [(c.docid, c.text, c.score, c.rank) for c in r.candidates]) for r in reqs
    ]


@FUZZ
@given(reqs=requests())
def test_trec_runs_round_trip(reqs: list[Request]) -> None:
    results = [Result(query=r.query, candidates=sorted(r.candidates, key=lambda c: -c.score), stats={}) for r in reqs]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.txt"
        write_trec_run(path, results)
        back = read_trec_run(path)
    for result in results:
        got = back[result.query.qid]
        assert list(got) == [c.docid for c in result.candidates]
        values = list(got.values())
        assert all(a > b for a, b in zip(values, values[1:]))  # ties nudged, order kept
