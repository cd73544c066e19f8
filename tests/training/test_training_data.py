"""Training-data validation (one test per bad-row type, each naming file and line) and the collators."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from perank.families.pe_rank.training.data import AlignmentCollator, AlignmentDataset, RankCollator, RankDataset
from perank.training.jsonl import MAX_REPORTED_ERRORS, RowErrors
from perank.types import InputError


@pytest.fixture(scope="module")
def tokenizer(tiny_models: tuple[str, str]):
    from transformers import AutoTokenizer

    from perank.families.pe_rank.model import add_special_tokens

    tok = AutoTokenizer.from_pretrained(tiny_models[0])
    add_special_tokens(tok)
    return tok


@pytest.fixture()
def refuse_row(tmp_path: Path, tokenizer, rank_row, write_jsonl) -> Callable[..., None]:
    """``refuse_row(row, match, **kw)``: a file of a good row, then ``row``, is refused naming line 2."""

    def refuse(row: dict, match: str, **kw) -> None:
        path = write_jsonl(tmp_path / "train.jsonl", [rank_row(), row])
        with pytest.raises(InputError, match=match) as info:
            RankDataset(path, tokenizer, kw.pop("max_length", 2048), **kw)
        assert f"{path}:2:" in str(info.value)

    return refuse


def test_good_rows_load(tmp_path: Path, tokenizer, rank_row, write_jsonl) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", [rank_row(4), rank_row(3, start=4)])
    ds = RankDataset(path, tokenizer, 2048, use_with_content=True)
    assert len(ds) == 2 and ds[0]["ids_w"] is not None and ds[0]["ranking"] == [3, 2, 1, 0]


def test_missing_field(rank_row, refuse_row) -> None:
    row = rank_row()
    del row["ranking"]
    refuse_row(row, "'ranking' must be")


def test_missing_messages(rank_row, refuse_row) -> None:
    row = rank_row()
    del row["messages_wo_content"]
    refuse_row(row, "messages_wo_content")


def test_ranking_not_permutation(rank_row, refuse_row) -> None:
    row = rank_row()
    row["ranking"] = [0, 0, 1, 2]
    refuse_row(row, "not a permutation")


def test_extra_texts_count(rank_row, refuse_row) -> None:
    row = rank_row()
    row["extra_texts"] = row["extra_texts"][:-1]
    refuse_row(row, "expected 2n = 8")


def test_extra_texts_inconsistent(rank_row, refuse_row) -> None:
    row = rank_row()
    row["extra_texts"][-1], row["extra_texts"][-2] = row["extra_texts"][-2], row["extra_texts"][-1]
    refuse_row(row, "not the candidates in 'ranking' order")


def test_placeholder_count_mismatch(rank_row, refuse_row) -> None:
    row = rank_row(4)
    row["ranking"], row["extra_texts"] = [0, 1, 2], row["extra_texts"][:3] * 2
    refuse_row(row, "PLACEHOLDER")


def test_query_embedding_needs_matching_prompt(tmp_path: Path, tokenizer, rank_row, write_jsonl) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", [rank_row(4, query_embedding=False)])
    with pytest.raises(InputError, match="--query-embedding"):
        RankDataset(path, tokenizer, 2048, query_embedding=True)
    ok = write_jsonl(tmp_path / "q.jsonl", [rank_row(4, query_embedding=True)])
    assert len(RankDataset(ok, tokenizer, 2048, query_embedding=True)) == 1


def test_too_long(rank_row, refuse_row) -> None:
    refuse_row(rank_row(), "longer than model_max_length", max_length=60)


def test_malformed_json(tmp_path: Path, tokenizer, rank_row) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(rank_row()) + "\n{not json\n")
    with pytest.raises(InputError, match=rf"{path}:2: malformed JSON"):
        RankDataset(path, tokenizer, 2048)


def test_all_errors_reported(tmp_path: Path, tokenizer, rank_row, write_jsonl) -> None:
    bad = rank_row()
    bad["ranking"] = [9, 9, 9, 9]
    path = write_jsonl(tmp_path / "t.jsonl", [bad, rank_row(), bad])
    with pytest.raises(InputError, match="2 bad training row") as info:
        RankDataset(path, tokenizer, 2048)
    assert f"{path}:1:" in str(info.value) and f"{path}:3:" in str(info.value)


def test_at_most_twenty_errors_are_listed(tmp_path: Path) -> None:
    errors = RowErrors(tmp_path / "t.jsonl")
    for lineno in range(1, MAX_REPORTED_ERRORS + 6):
        errors.add(lineno, "bad")
    with pytest.raises(InputError, match=f"{MAX_REPORTED_ERRORS + 5} bad training row") as info:
        errors.raise_if_any()
    msg = str(info.value)
    assert f"t.jsonl:{MAX_REPORTED_ERRORS}: bad" in msg and f"t.jsonl:{MAX_REPORTED_ERRORS + 1}:" not in msg
    assert msg.endswith("... and 5 more") and MAX_REPORTED_ERRORS == 20


def test_alignment_rows(tmp_path: Path, tokenizer, align_row, write_jsonl) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [align_row(0), align_row(1)])
    ds = AlignmentDataset(path, tokenizer, 512)
    ex = ds[0]
    # labels cover only the assistant turn: the passage text is in the decoded targets, the prompt is not
    target = tokenizer.decode([t for t in ex["labels"] if t != -100])
    assert "passage number 0" in target and "reconstruct" not in target
    bad = align_row(0)
    bad["extra_texts"] = []
    path = write_jsonl(tmp_path / "b.jsonl", [bad])
    with pytest.raises(InputError, match=rf"{path}:1: 1 <PLACEHOLDER> token\(s\) but 0 extra_texts"):
        AlignmentDataset(path, tokenizer, 512)
    with pytest.raises(InputError, match="prompt is"):
        AlignmentDataset(write_jsonl(tmp_path / "c.jsonl", [align_row(0)]), tokenizer, 5)


def test_collators(tmp_path: Path, tokenizer, align_row, rank_row, write_jsonl) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", [rank_row(4), rank_row(3, start=4)])
    ds = RankDataset(path, tokenizer, 2048, use_with_content=True)
    batch = RankCollator(tokenizer.pad_token_id)([ds[0], ds[1]])
    assert batch["input_ids_wo"].shape == batch["attention_mask_wo"].shape
    assert batch["input_ids_w"].shape[0] == 2 and batch["attention_mask_w"][1].sum() == len(ds[1]["ids_w"])
    assert [r.tolist() for r in batch["ranking"]] == [[3, 2, 1, 0], [2, 1, 0]]
    assert batch["candidates"][1] == ds[1]["candidates"]
    a = AlignmentDataset(write_jsonl(tmp_path / "a.jsonl", [align_row(0), align_row(5)]), tokenizer, 512)
    ab = AlignmentCollator(tokenizer.pad_token_id)([a[0], a[1]])
    assert ab["input_ids"].shape == ab["labels"].shape and ab["texts"] == [a[0]["texts"], a[1]["texts"]]
    assert (ab["labels"][ab["attention_mask"] == 0] == -100).all()


def test_query_text_false_refuses_rows_that_show_the_query(tmp_path: Path, tokenizer, rank_row, write_jsonl) -> None:
    from perank.families.pe_rank.prompts import PromptSpec, messages

    row = rank_row(4, query_embedding=True)
    path = write_jsonl(tmp_path / "t.jsonl", [row])
    with pytest.raises(InputError, match=r"t\.jsonl:1: .*shows the query's text"):
        RankDataset(path, tokenizer, 2048, query_embedding=True, query_text=False)
    spec = PromptSpec("embedding", query_embedding=True, query_text=False)
    row["messages_wo_content"] = messages(spec, row["query"], row["extra_texts"][:4], True)
    ok = write_jsonl(tmp_path / "ok.jsonl", [row])
    assert len(RankDataset(ok, tokenizer, 2048, query_embedding=True, query_text=False)) == 1
    with pytest.raises(InputError, match="needs --query_embedding"):
        RankDataset(ok, tokenizer, 2048, query_text=False)
