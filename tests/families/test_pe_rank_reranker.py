"""The PE-Rank rerankers on the tiny random model: batching, windows, scores, stats and edge cases."""

from __future__ import annotations

import pytest
import torch

from helpers.paths import REPO
from perank.families.pe_rank.decoding import decode_listwise
from perank.families.pe_rank.prompts import messages
from perank.families.pe_rank.reranker import ListwiseTextEmbeddingReranker, PERankReranker
from perank.ranking.registry import build_reranker
from perank.ranking.sliding_window import listwise_scores, share
from perank.types import InputError, Query, Request


def check_result(request: Request, result) -> None:
    assert result.query == request.query
    assert sorted(c.docid for c in result.candidates) == sorted(c.docid for c in request.candidates)
    scores = [c.score for c in result.candidates]
    assert all(a > b for a, b in zip(scores, scores[1:])), "scores must strictly decrease"
    assert [c.rank for c in result.candidates] == list(range(1, len(request.candidates) + 1))


def test_registered_names_and_unknown_kwargs(tiny_model):
    ranker = build_reranker("pe-rank", model=tiny_model, batch_size=2)
    with pytest.raises(InputError, match="has no option 'topk'"):
        build_reranker("pe-rank", model=tiny_model, topk=100)  # options are never silently ignored
    assert isinstance(ranker, PERankReranker) and ranker.name == "pe-rank"
    assert isinstance(build_reranker("listwise-embedding", model=tiny_model), PERankReranker)
    text = build_reranker("listwise-text-embedding", model=tiny_model)
    assert isinstance(text, ListwiseTextEmbeddingReranker) and text.spec.mode == "text-embedding"
    info = ranker.describe()
    assert info["window_size"] == 20 and info["step"] == 10 and info["decode_mode"] == "greedy"


def test_scores_formula():
    assert listwise_scores(3, [0.5, 0.9, 1.0]) == [2.5, 1.9, 1.0]
    assert listwise_scores(2) == [1.0, 0.0]
    assert share(2.0, [1, 3]) == [0.5, 1.5]
    assert share(1.0, [0, 0]) == [0.5, 0.5]


def test_single_window_matches_direct_decode(tiny_model, topic_request):
    """One query of 7 passages = one window: the ranking is decode_listwise's, scores are (N - r) + p."""
    request = topic_request("q1", 7)
    ranker = PERankReranker(model=tiny_model)
    (result,) = ranker.rerank([request])
    check_result(request, result)

    texts = [c.text for c in request.candidates]
    prompt = tiny_model.tokenizer.apply_chat_template(
        messages(ranker.spec, request.query.text, texts), tokenize=False, add_generation_prompt=True
    )
    batch = tiny_model.tokenizer([prompt], add_special_tokens=False, return_tensors="pt")
    vectors = tiny_model.embed_passages(texts)
    (out,) = decode_listwise(tiny_model, batch["input_ids"], batch["attention_mask"], [vectors], [vectors])
    assert [c.docid for c in result.candidates] == [request.candidates[i].docid for i in out.order]
    expected = [7 - r + p for r, p in enumerate(out.step_probs, start=1)]
    assert [c.score for c in result.candidates] == pytest.approx(expected, abs=1e-5)
    stats = result.stats
    assert stats["windows"] == 1 and stats["tokens_generated"] == 7
    assert stats["tokens_processed"] == int(batch["attention_mask"].sum()) + 6
    assert stats["latency_s"] > 0 and stats["truncated_passages"] == 0


@pytest.mark.parametrize("reuse_prefix", [True, False])
def test_batching_across_queries_equals_one_at_a_time(tiny_model, reuse_prefix, topic_request):
    """Windows of several queries decoded together give the same rankings as each query alone."""
    requests = [topic_request("a", 35), topic_request("b", 12, "other text {i} " * 2), topic_request("c", 20)]
    together = PERankReranker(model=tiny_model, batch_size=3, reuse_prefix=reuse_prefix).rerank(requests)
    alone = PERankReranker(model=tiny_model, batch_size=1, reuse_prefix=reuse_prefix).rerank(requests)
    for req, r1, r2 in zip(requests, together, alone):
        check_result(req, r1)
        assert [c.docid for c in r1.candidates] == [c.docid for c in r2.candidates]
        assert [c.score for c in r1.candidates] == pytest.approx([c.score for c in r2.candidates], abs=1e-4)
        if not reuse_prefix:  # with reuse, a batch whose rows change recomputes its prefix: more tokens
            assert r1.stats["tokens_processed"] == r2.stats["tokens_processed"]
    assert [r.stats["windows"] for r in together] == [3, 1, 1]  # 35 -> (15,35), (5,25), (0,15)


def test_prefix_reuse_same_rankings_fewer_tokens(tiny_model, topic_request):
    """Reusing the shared prompt prefix changes no ranking; each window after the first skips exactly it."""
    requests = [topic_request("a", 50), topic_request("b", 50, "other text {i} " * 2)]  # 4 windows of 20
    reused = PERankReranker(model=tiny_model, batch_size=2).rerank(requests)
    whole = PERankReranker(model=tiny_model, batch_size=2, reuse_prefix=False).rerank(requests)
    ranker = PERankReranker(model=tiny_model)
    for req, r1, r2 in zip(requests, reused, whole):
        assert [c.docid for c in r1.candidates] == [c.docid for c in r2.candidates]
        assert [c.score for c in r1.candidates] == pytest.approx([c.score for c in r2.candidates], abs=1e-4)
        texts = [c.text for c in req.candidates[:20]]
        prompt = tiny_model.tokenizer.apply_chat_template(
            messages(ranker.spec, req.query.text, texts), tokenize=False, add_generation_prompt=True
        )
        ids = tiny_model.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        shared = ids.index(tiny_model.placeholder_id)
        windows = r1.stats["windows"]
        assert windows == 4
        assert r2.stats["tokens_processed"] - r1.stats["tokens_processed"] == (windows - 1) * shared
    with pytest.raises(InputError, match="reuse_prefix"):
        PERankReranker(model=tiny_model, reuse_prefix="yes")


def test_passages_encoded_once_per_query(tiny_model, monkeypatch, topic_request):
    calls: list[int] = []
    original = tiny_model.embed_candidates

    def counting(passages, queries, batch_size=64):
        calls.append(sum(len(group) for group in passages))
        return original(passages, queries, batch_size=batch_size)

    monkeypatch.setattr(tiny_model, "embed_candidates", counting)
    PERankReranker(model=tiny_model, batch_size=4).rerank([topic_request("a", 45), topic_request("b", 30)])
    assert calls == [75]


def test_text_embedding_and_single_pass_modes(tiny_model, topic_request):
    request = topic_request("q", 25)
    for ranker in (
        ListwiseTextEmbeddingReranker(model=tiny_model),
        PERankReranker(model=tiny_model, decode_mode="single-pass"),
    ):
        (result,) = ranker.rerank([request])
        check_result(request, result)
        assert result.stats["windows"] == 2
    with pytest.raises(InputError, match="decode mode"):
        PERankReranker(model=tiny_model, decode_mode="beam")


def test_zero_candidates_makes_no_model_call(tiny_model, monkeypatch):
    monkeypatch.setattr(tiny_model, "embed_candidates", lambda *a, **k: pytest.fail("model was called"))
    request = Request(query=Query("q0", "nothing"), candidates=[])
    (result,) = PERankReranker(model=tiny_model).rerank([request])
    assert result.candidates == [] and result.stats["windows"] == 0


def test_one_candidate_returned_as_is(tiny_model, monkeypatch, topic_request):
    monkeypatch.setattr(tiny_model, "embed_candidates", lambda *a, **k: pytest.fail("model was called"))
    request = topic_request("q1", 1)
    (result,) = PERankReranker(model=tiny_model).rerank([request])
    assert [c.docid for c in result.candidates] == ["dq1-0"]
    assert result.candidates[0].score == 1.0 and result.stats["tokens_processed"] == 0


def test_fewer_than_window_size_is_one_window(tiny_model, topic_request):
    request = topic_request("q", 9)
    (result,) = PERankReranker(model=tiny_model, window_size=20).rerank([request])
    check_result(request, result)
    assert result.stats["windows"] == 1 and result.stats["tokens_generated"] == 9


def test_empty_passage_text_is_still_one_token(tiny_model, topic_request):
    request = topic_request("q", 4)
    request.candidates[1].text = ""
    request.candidates[2].text = "   "
    for ranker in (PERankReranker(model=tiny_model), ListwiseTextEmbeddingReranker(model=tiny_model)):
        (result,) = ranker.rerank([request])
        check_result(request, result)


def test_placeholder_strings_in_text_are_neutralised(tiny_model, topic_request):
    request = topic_request("q", 3, "text with <PLACEHOLDER> and <RANK> inside {i}")
    request = Request(Query("q", "query <PLACEHOLDER>"), request.candidates)
    (result,) = ListwiseTextEmbeddingReranker(model=tiny_model).rerank([request])
    check_result(request, result)


def test_over_long_passages_are_truncated_and_counted(tiny_model, topic_request):
    request = topic_request("q", 5)
    request.candidates[0].text = "word " * 2000
    request.candidates[3].text = "another " * 500
    (result,) = PERankReranker(model=tiny_model).rerank([request])
    check_result(request, result)
    assert result.stats["truncated_passages"] == 2  # the tiny encoder keeps 64 tokens


def test_more_than_a_thousand_candidates(tiny_model, topic_request):
    """1,100 candidates: 109 windows, the encoder batched, every passage kept."""
    request = topic_request("big", 1100, "p{i}")
    ranker = PERankReranker(model=tiny_model, encode_batch_size=256, decode_mode="single-pass")
    (result,) = ranker.rerank([request])
    check_result(request, result)
    assert result.stats["windows"] == 109


def test_missing_default_checkpoint_says_how_to_get_one(monkeypatch, tmp_path):
    import perank.families.pe_rank.reranker as module

    monkeypatch.setattr(module, "DEFAULT_CHECKPOINT", tmp_path / "nothing-here")
    with pytest.raises(InputError, match="perank.cli.assemble"):
        PERankReranker()


def test_loads_from_model_path(tiny_checkpoint, topic_request):
    """model_path goes through load_pe_rank (here: perank's own format, projector only + base LLM)."""
    ranker = build_reranker("pe-rank", model_path=str(tiny_checkpoint), device="cpu", dtype="float32", max_length=32)
    (result,) = ranker.rerank([topic_request("q", 6)])
    assert len(result.candidates) == 6
    assert ranker.model.dtype == torch.float32
    assert ranker.model.encoder.max_length == 32


@pytest.mark.slow
def test_end_to_end_real_dl19_queries(tmp_path):
    """SmolLM2-135M + MiniLM (untrained projector), assembled and loaded like a user would, on 2 DL19 queries."""

    from perank.cli.assemble import main as assemble
    from perank.io import read_retrieval_results

    data = REPO / "data" / "msmarco-passage" / "retrieve_results_dl19.json"
    requests = [Request(r.query, r.candidates[:25]) for r in read_retrieval_results(data)[:2]]
    ckpt = tmp_path / "pe-rank-smollm2-minilm-untrained"
    assert assemble(["--llm", "smollm2", "--encoder", "all-minilm-l6-v2", "--output", str(ckpt)]) == 0
    ranker = build_reranker("pe-rank", model_path=str(ckpt), device="cpu", batch_size=2)
    results = ranker.rerank(requests)
    for request, result in zip(requests, results):
        check_result(request, result)
        stats = result.stats
        assert stats["windows"] == 2  # 25 -> (5, 25), (0, 15)
        assert stats["tokens_generated"] == 20 + 15
        assert 400 < stats["tokens_processed"] < 1500
        assert stats["latency_s"] > 0 and "truncated_passages" in stats


def test_model_mode_is_restored(make_tiny_model, topic_request):
    """Ranking runs in eval mode but leaves a model being trained in train mode."""

    model = make_tiny_model().train()
    seen: list[bool] = []
    original = model.hidden_states

    def recording(*args, **kwargs):
        seen.append(model.llm.training)
        return original(*args, **kwargs)

    model.hidden_states = recording
    PERankReranker(model=model).rerank([topic_request("q", 4)])
    assert seen and not any(seen)
    assert model.training and model.llm.training


def test_checkpoint_without_query_text_omits_it(tiny_model, monkeypatch, topic_request):
    """A model trained without the query's text (config.query_text False) is prompted the same way."""
    monkeypatch.setattr(tiny_model.config, "query_embedding", True)
    monkeypatch.setattr(tiny_model.config, "query_embedding_position", "answer")
    monkeypatch.setattr(tiny_model.config, "query_text", False)
    ranker = build_reranker("pe-rank", model=tiny_model, window_size=4, step=2)
    assert ranker.describe()["query_text"] is False
    prompts: list[str] = []
    real = tiny_model.tokenizer.apply_chat_template

    def spy(msgs, **kwargs):
        prompts.append(msgs[0]["content"])
        return real(msgs, **kwargs)

    monkeypatch.setattr(tiny_model.tokenizer, "apply_chat_template", spy)
    request = topic_request("7", 6)
    (result,) = ranker.rerank([request])
    check_result(request, result)
    assert prompts and not any("what is topic 7" in p for p in prompts)
