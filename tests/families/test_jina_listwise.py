"""The ``jina-listwise`` family: parity with jina-reranker-v3's own ``modeling.py``, the prompt, blocks, layout."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from helpers.paths import PEERS
from perank.families.jina_listwise.blocks import fit_text, plan_blocks
from perank.families.jina_listwise.model import merge_blocks
from perank.families.jina_listwise.prompts import DOC_MARKER, QUERY_MARKER, block_prompt, sanitize
from perank.ranking.registry import build_reranker
from perank.types import InputError

TINY = PEERS / "jina-v3-tiny"
GOLDEN = json.loads((PEERS / "golden_jina.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def reranker():
    return build_reranker("jina-listwise", model_path=str(TINY), device="cpu")


def test_golden_was_made_on_this_fixture() -> None:
    for name, digest in GOLDEN["sha256"].items():
        assert hashlib.sha256((TINY / name).read_bytes()).hexdigest() == digest, f"{name} changed since the golden"


@pytest.mark.parametrize("index", range(len(GOLDEN["cases"])), ids=[c["name"] for c in GOLDEN["cases"]])
def test_parity_with_jina_modeling(index: int) -> None:
    """The same prompts to the token, scores within 1e-5 and the same ranking as ``JinaForRanking.rerank``."""
    case = GOLDEN["cases"][index]
    options = {"max_doc_length": 2048, "max_query_length": 512, **case["rerank_kwargs"]}
    reranker = build_reranker("jina-listwise", model_path=str(TINY), device="cpu", **options)
    prompts, _, _ = reranker.block_prompts(case["query"], case["docs"])
    assert [reranker.tokenizer(p)["input_ids"] for p in prompts] == case["prompt_ids"]
    result = reranker.rank(case["query"], case["docs"])
    scores = {int(c.docid): c.score for c in result.candidates}
    assert max(abs(scores[i] - s) for i, s in enumerate(case["scores"])) < 1e-5
    gaps = sorted(case["scores"])
    if min((b - a for a, b in zip(gaps, gaps[1:])), default=1.0) > 1e-5:  # no near-tie the noise could flip
        assert [int(c.docid) for c in result.candidates] == case["ranking"]
    assert result.stats["llm_calls"] == len(case["prompt_ids"])
    assert result.stats["tokens_processed"] == sum(len(p) for p in case["prompt_ids"])


def test_truncation_is_counted(reranker) -> None:
    case = next(c for c in GOLDEN["cases"] if c["rerank_kwargs"].get("max_doc_length") == 16)
    short = build_reranker("jina-listwise", model_path=str(TINY), device="cpu", max_doc_length=16, max_query_length=8)
    result = short.rank(case["query"], case["docs"])
    longer = sum(len(short.tokenizer(d)["input_ids"]) > 16 for d in case["docs"])
    assert longer == 3 and result.stats["truncated_passages"] == longer and result.stats["truncated_queries"] == 1
    assert reranker.rank(case["query"], case["docs"]).stats["truncated_passages"] == 0


def test_prompt_layout_and_sanitising() -> None:
    text = block_prompt("q <|rerank_token|>?", ["a", f"b{DOC_MARKER}"], instruction="be strict")
    assert text.startswith("<|im_start|>system\nYou are a search relevance expert") and text.count(QUERY_MARKER) == 1
    assert text.endswith(
        "Rank the passages based on their relevance to query: q ?\n<instruct>\nbe strict\n</instruct>\n"
        f'<passage id="0">\na{DOC_MARKER}\n</passage>\n<passage id="1">\nb{DOC_MARKER}\n</passage>\n'
        f"<query>\nq ?{QUERY_MARKER}\n</query><|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )
    # the query marker goes first, as in jina's code: a nested marker cannot survive
    assert sanitize("<|embed<|rerank_token|>_token|>") == ""


def test_blocks_close_on_count_and_on_room() -> None:
    assert plan_blocks([1] * 7, 0, max_length=10**6, block_size=3, max_doc_length=10) == [[0, 1, 2], [3, 4, 5], [6]]
    # room = 100 - 2 * 5 = 90; a block closes once the room left is <= 40
    assert plan_blocks([30, 30, 10, 40, 5], 5, max_length=100, block_size=125, max_doc_length=40) == [
        [0, 1],
        [2, 3],
        [4],
    ]
    assert plan_blocks([], 5, max_length=100, block_size=3, max_doc_length=40) == []


def test_fit_text_decodes_at_the_limit(reranker) -> None:
    tokenizer = reranker.tokenizer
    ids = tokenizer("fleas live for months on a dog")["input_ids"]
    whole = fit_text(tokenizer, "fleas live for months on a dog", len(ids))
    assert (whole.length, whole.cut) == (len(ids), False)  # exactly at the limit: decoded, not cut
    cut = fit_text(tokenizer, "fleas live for months on a dog", 3)
    assert cut.length == 3 and cut.cut and cut.text == tokenizer.decode(ids[:3])


def test_merge_weights_blocks_by_their_best_score() -> None:
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    docs = [torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0], [1.0, 1.0]])]
    scores = [torch.tensor([1.0]), torch.tensor([0.0, 0.5])]  # weights 1.0 and 0.75
    merged = merge_blocks(q, docs, scores)
    query = torch.tensor([1.0, 0.75], dtype=torch.float64) / 1.75
    expected = torch.cat(docs).double() @ query / (torch.cat(docs).double().norm(dim=1) * query.norm())
    assert torch.allclose(merged, expected)
    one = merge_blocks(q[:1], docs[:1], scores[:1])
    assert one.tolist() == pytest.approx([1.0])


def test_batched_blocks_agree_with_one_at_a_time() -> None:
    case = next(c for c in GOLDEN["cases"] if len(c["prompt_ids"]) > 2)
    one = build_reranker("jina-listwise", model_path=str(TINY), device="cpu", block_size=2, **case["rerank_kwargs"])
    four = build_reranker(
        "jina-listwise", model_path=str(TINY), device="cpu", block_size=2, batch_size=4, **case["rerank_kwargs"]
    )
    a, b = one.rank(case["query"], case["docs"]), four.rank(case["query"], case["docs"])
    assert [c.docid for c in a.candidates] == [c.docid for c in b.candidates]
    assert [c.score for c in a.candidates] == pytest.approx([c.score for c in b.candidates], abs=1e-6)


def test_forward_is_differentiable_for_training(reranker) -> None:
    """A trainer builds prompts, pads them and backpropagates a listwise loss through ``padded_scores``."""
    from perank.backends.padding import pad_rows

    model = reranker.model
    rows = [reranker.tokenizer(block_prompt("fleas", d))["input_ids"] for d in (["a", "b", "c"], ["d"])]
    batch = pad_rows(rows, reranker.tokenizer.pad_token_id, side="right")
    model.train()
    try:
        out = model(batch["input_ids"], batch["attention_mask"])
        scores, mask = out.padded_scores()
        assert scores.shape == (2, 3) and mask.tolist() == [[True, True, True], [True, False, False]]
        loss = -torch.log_softmax(scores / 0.05, dim=-1)[:, 0].mean()
        loss.backward()
        assert model.projector[0].weight.grad is not None and model.backbone.norm.weight.grad is not None
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()


def test_refuses_other_layouts_and_bad_options(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="block_size=0"):
        build_reranker("jina-listwise", model_path=str(TINY), block_size=0)
    with pytest.raises(InputError, match="no such model folder"):
        build_reranker("jina-listwise", model_path=str(tmp_path / "absent"))
    folder = tmp_path / "no-projector"
    shutil.copytree(TINY, folder)
    state = load_file(str(folder / "model.safetensors"))
    save_file({k: v for k, v in state.items() if not k.startswith("projector.2")}, str(folder / "model.safetensors"))
    with pytest.raises(InputError, match="not jina-reranker-v3's layout"):
        build_reranker("jina-listwise", model_path=str(folder), device="cpu")
    state.pop("model.norm.weight")
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(InputError, match="do not match its config.*norm.weight"):
        build_reranker("jina-listwise", model_path=str(folder), device="cpu")


def test_refuses_compute_score(reranker) -> None:
    with pytest.raises(InputError, match="no per-pair score"):
        reranker.compute_score([("q", "a passage")])
