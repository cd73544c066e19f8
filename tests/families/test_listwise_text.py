"""The listwise-text reranker: batched generation, parsing with repairs, scores N - r, stats."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from perank.backends.hf_lm import HFLanguageModel
from perank.families.listwise_text.reranker import ListwiseTextReranker
from perank.ranking.registry import build_reranker
from perank.types import Candidate, InputError, Query, Request


def make_request(qid: str, n: int) -> Request:
    cands = [Candidate(docid=f"{qid}-{i}", text=f"passage {i} [1] text", score=0.0, rank=i + 1) for i in range(n)]
    return Request(query=Query(qid=qid, text=f"query {qid}"), candidates=cands)


class ScriptedLLM(nn.Module):
    """Stands in for a causal LM: 'generates' a fixed answer per call (reversed order by default)."""

    def __init__(self, tokenizer, answer=None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.tokenizer = tokenizer
        self.answer = answer
        self.config = type("Config", (), {"_name_or_path": "scripted"})()
        self.generation_config = type("GenConfig", (), {"eos_token_id": tokenizer.eos_token_id})()
        self.calls: list[tuple[int, int]] = []

    def generate(self, input_ids, attention_mask, generation_config):
        texts = []
        for row in range(input_ids.shape[0]):
            prompt = self.tokenizer.decode(input_ids[row][attention_mask[row].bool()])
            n = int(prompt.split("I will provide you with ")[1].split(" ")[0])
            texts.append(self.answer(n) if self.answer else " > ".join(f"[{i}]" for i in range(n, 0, -1)))
        self.calls.append((input_ids.shape[0], generation_config.max_new_tokens))
        new = [self.tokenizer(t, add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id] for t in texts]
        width = max(len(x) for x in new)
        pad = self.tokenizer.pad_token_id
        rows = [x + [pad] * (width - len(x)) for x in new]
        return torch.cat([input_ids, torch.tensor(rows)], dim=1)


def test_scripted_generation_is_parsed_and_applied(tiny_model):
    tok = tiny_model.tokenizer
    llm = ScriptedLLM(tok)
    ranker = ListwiseTextReranker(lm=HFLanguageModel(llm, tok), batch_size=4)
    requests = [make_request("a", 5), make_request("b", 3)]
    results = ranker.rerank(requests)
    assert llm.calls == [(2, 6 * 5 + 10)]  # one batched call for both queries' (only) window
    for req, res in zip(requests, results):
        n = len(req.candidates)
        assert [c.docid for c in res.candidates] == [c.docid for c in reversed(req.candidates)]
        assert [c.score for c in res.candidates] == [float(n - r) for r in range(1, n + 1)]
        assert res.stats["parse_repairs_missing"] == 0 and res.stats["windows"] == 1
        assert (
            res.stats["tokens_generated"]
            == len(tok(" > ".join(["[1]"] * n), add_special_tokens=False)["input_ids"]) + 1
        )


def test_repairs_are_summed_over_windows(tiny_model):
    tok = tiny_model.tokenizer
    llm = ScriptedLLM(tok, answer=lambda n: "[2] > [2] > [99]")
    ranker = ListwiseTextReranker(lm=HFLanguageModel(llm, tok), window_size=20, step=10)
    (result,) = ranker.rerank([make_request("q", 30)])  # windows (10, 30) and (0, 20)
    assert result.stats["windows"] == 2
    assert result.stats["parse_repairs_repeated"] == 2
    assert result.stats["parse_repairs_out_of_range"] == 2
    assert result.stats["parse_repairs_missing"] == 38
    scores = [c.score for c in result.candidates]
    assert all(a > b for a, b in zip(scores, scores[1:]))


def test_real_generation_on_tiny_model(tiny_model):
    """A random LLM writes garbage: the result is still a permutation and the accounting is filled in."""
    ranker = build_reranker(
        "listwise-text",
        lm=HFLanguageModel(tiny_model.llm, tiny_model.tokenizer),
        max_new_tokens=12,
        window_size=4,
        step=2,
    )
    requests = [make_request("a", 6), make_request("b", 1), make_request("c", 0)]
    results = ranker.rerank(requests)
    assert sorted(c.docid for c in results[0].candidates) == sorted(c.docid for c in requests[0].candidates)
    stats = results[0].stats
    assert stats["windows"] == 2 and 0 < stats["tokens_generated"] <= 24 and stats["tokens_processed"] > 100
    assert set(stats) >= {"latency_s", "parse_repairs_repeated", "parse_repairs_out_of_range", "parse_repairs_missing"}
    assert [c.docid for c in results[1].candidates] == ["b-0"] and results[1].stats["tokens_processed"] == 0
    assert results[2].candidates == []


def test_rankgpt_prompt_variant(tiny_model):
    tok = tiny_model.tokenizer
    seen: list[str] = []

    class Recording(ScriptedLLM):
        def generate(self, input_ids, attention_mask, generation_config):
            seen.append(tok.decode(input_ids[0]))
            return super().generate(input_ids, attention_mask, generation_config)

    ranker = ListwiseTextReranker(lm=HFLanguageModel(Recording(tok), tok), prompt="rankgpt")
    ranker.rerank([make_request("q", 3)])
    assert "[1] passage 0 (1) text" in seen[0]
    with pytest.raises(InputError):
        ListwiseTextReranker(lm=HFLanguageModel(Recording(tok), tok), prompt="nope")


def test_loads_a_pe_rank_checkpoint_or_a_plain_llm(tiny_checkpoint, tiny_dirs):
    for path in (tiny_checkpoint, tiny_dirs.llm):
        ranker = build_reranker("listwise-text", model_path=str(path), device="cpu", max_new_tokens=4)
        (result,) = ranker.rerank([make_request("q", 3)])
        assert len(result.candidates) == 3
