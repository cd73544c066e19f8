"""FlagEmbedding query-group data (perank.training.pairs): validation with file:line, seeded sampling."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from perank.training.pairs import PairGroup, PairGroupDataset, read_pair_groups, sample_group
from perank.types import InputError

GOOD = {"query": "q", "pos": ["p0", "p1"], "neg": ["n0", "n1", "n2"]}
SCORED = {**GOOD, "pos_scores": [3.0, 2.5], "neg_scores": [1, 0.5, -1.0]}


def write(tmp_path: Path, *rows: object) -> Path:
    path = tmp_path / "train.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_reads_groups_with_where(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, "", {"query": "r", "pos": ["x"]})
    groups = read_pair_groups(path)
    assert [g.query for g in groups] == ["q", "r"]
    assert groups[0].where == f"{path}:1" and groups[1].where == f"{path}:3"
    assert groups[1].neg == [] and groups[1].pos_scores is None
    scored = read_pair_groups(write(tmp_path, SCORED))[0]
    assert scored.pos_scores == [3.0, 2.5] and scored.neg_scores == [1.0, 0.5, -1.0]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ('{"query": "q", "pos": ["p"]', "malformed JSON"),
        (["not", "an", "object"], "expected a JSON object"),
        ({"pos": ["p"]}, "missing 'query'"),
        ({"query": "  ", "pos": ["p"]}, "'query' is empty"),
        ({"query": 3, "pos": ["p"]}, "'query' must be a string"),
        ({"query": "q", "pos": [], "neg": ["n"]}, "a group with no positive"),
        ({"query": "q", "neg": ["n"]}, "'pos' must be a list"),
        ({"query": "q", "pos": ["p", 7]}, "'pos'[1] is not a string"),
        ({"query": "q", "pos": ["p"], "neg": [None]}, "'neg'[0] is not a string"),
        ({"query": "q", "pos": ["p"], "neg": "n"}, "'neg' must be a list"),
        ({**GOOD, "pos_scores": [1.0], "neg_scores": [0, 0, 0]}, "'pos_scores' has 1 score(s) for 2 passage(s)"),
        ({**GOOD, "pos_scores": [1.0, 2.0]}, "both 'pos_scores' and 'neg_scores'"),
        ({**GOOD, "pos_scores": [1.0, "2"], "neg_scores": [0, 0, 0]}, "'pos_scores'[1] is not a number"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path: Path, row: object, message: str) -> None:
    path = write(tmp_path, GOOD, row)
    with pytest.raises(InputError) as info:
        read_pair_groups(path)
    assert f"{path}:2" in str(info.value) and message in str(info.value)


def test_non_finite_scores(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + '{"query": "q", "pos": ["p"], "pos_scores": [NaN], "neg_scores": []}\n')
    with pytest.raises(InputError, match=r"train.jsonl:2: 'pos_scores'\[0\] is not finite"):
        read_pair_groups(path)


def test_all_bad_rows_reported_and_mixed_scores(tmp_path: Path) -> None:
    path = write(tmp_path, {"query": "q", "pos": []}, SCORED, GOOD)
    msg = str(pytest.raises(InputError, read_pair_groups, path).value)
    assert "2 bad training row(s)" in msg and f"{path}:1: a group with no positive" in msg
    assert f"{path}:3: teacher scores missing here, unlike line 2" in msg
    with pytest.raises(InputError, match="not found"):
        read_pair_groups(tmp_path / "missing.jsonl")


def group(n_neg: int, scores: bool = False) -> PairGroup:
    neg = [f"n{i}" for i in range(n_neg)]
    return PairGroup(
        "q",
        ["p0", "p1"],
        neg,
        [10.0, 11.0] if scores else None,
        [float(i) for i in range(n_neg)] if scores else None,
        "t.jsonl:1",
    )


def test_sample_without_replacement_and_aligned_scores() -> None:
    passages, teacher = sample_group(group(10, scores=True), 8, random.Random(0))
    assert len(passages) == 8 and passages[0] in ("p0", "p1")
    assert len(set(passages[1:])) == 7 and all(p.startswith("n") for p in passages[1:])
    assert teacher == [10.0 + int(passages[0][1])] + [float(p[1:]) for p in passages[1:]]
    assert sample_group(group(10), 8, random.Random(0)) == (passages, None)


def test_sample_with_replacement_when_short() -> None:
    passages, teacher = sample_group(group(3, scores=True), 8, random.Random(1))
    negs = passages[1:]
    assert len(negs) == 7 and set(negs) == {"n0", "n1", "n2"}
    assert max(negs.count(n) for n in set(negs)) <= 3  # ceil(7 / 3) copies of each at most
    assert teacher is not None and teacher[1:] == [float(n[1:]) for n in negs]
    assert sample_group(group(0), 1, random.Random(0))[0][0] in ("p0", "p1")
    with pytest.raises(InputError, match="t.jsonl:1: no negatives"):
        sample_group(group(0), 2, random.Random(0))


def test_dataset_is_seeded_by_item_and_epoch() -> None:
    groups = [group(20) for _ in range(4)]
    a, b = PairGroupDataset(groups, 4, seed=7), PairGroupDataset(groups, 4, seed=7)
    first = [a[i] for i in range(4)]
    assert [b[i] for i in reversed(range(4))] == first[::-1]  # order of access does not matter
    assert first[0] != first[1] or first[1] != first[2]  # items differ
    assert first[0] == {"query": "q", "passages": first[0]["passages"], "teacher": None}
    a.set_epoch(1)
    assert [a[i] for i in range(4)] != first
    a.set_epoch(0)
    assert [a[i] for i in range(4)] == first
    assert [PairGroupDataset(groups, 4, seed=8)[i] for i in range(4)] != first
    with pytest.raises(InputError, match="t.jsonl:1: no negatives"):
        PairGroupDataset([group(0)], 2)
    with pytest.raises(InputError, match="group_size"):
        PairGroupDataset(groups, 0)
