"""The batched, KV-cached listwise decoder equals the brute-force reference, row by row."""

from __future__ import annotations

import pytest
import torch

from perank.families.pe_rank.decoding import (
    decode_listwise,
    decode_listwise_reference,
    left_pad,
    prefill_prefix,
)
from perank.families.pe_rank.prompts import PromptSpec, messages


def test_batched_cached_decoding_equals_reference(tiny_model, decode_reference, window_batch):
    sizes = [5, 3, 7]
    prompts, batch, pvs, cvs = window_batch(tiny_model, sizes)
    assert len(set(batch["attention_mask"].sum(-1).tolist())) == 3, "rows must have different lengths"
    outputs = decode_listwise(tiny_model, batch["input_ids"], batch["attention_mask"], pvs, cvs)
    for n, prompt, pv, cv, out in zip(sizes, prompts, pvs, cvs, outputs):
        ref = decode_reference(tiny_model, prompt, pv, cv)
        assert sorted(out.order) == list(range(n))
        assert out.order == ref.order
        torch.testing.assert_close(torch.tensor(out.step_logits), torch.tensor(ref.step_logits), atol=1e-4, rtol=0)
        torch.testing.assert_close(torch.tensor(out.step_probs), torch.tensor(ref.step_probs), atol=1e-4, rtol=0)
        assert out.tokens_processed == ref.tokens_processed
        assert out.tokens_generated == n
        assert out.step_probs[-1] == pytest.approx(1.0)  # the last passage is the only one left


def test_token_accounting(tiny_model, window_batch):
    sizes = [4, 2]
    _, batch, pvs, cvs = window_batch(tiny_model, sizes, seed=3)
    outputs = decode_listwise(tiny_model, batch["input_ids"], batch["attention_mask"], pvs, cvs)
    prompt_lengths = batch["attention_mask"].sum(-1).tolist()
    for n, length, out in zip(sizes, prompt_lengths, outputs):
        assert out.tokens_processed == length + n - 1  # prompt + fed-back choices (the last one is not fed)
        assert out.tokens_generated == n


def test_single_pass_sorts_by_first_step_logits(tiny_model, window_batch):
    sizes = [6, 4]
    prompts, batch, pvs, cvs = window_batch(tiny_model, sizes, seed=1)
    greedy = decode_listwise(tiny_model, batch["input_ids"], batch["attention_mask"], pvs, cvs)
    single = decode_listwise(tiny_model, batch["input_ids"], batch["attention_mask"], pvs, cvs, mode="single-pass")
    for n, g, s in zip(sizes, greedy, single):
        assert sorted(s.order) == list(range(n))
        assert s.order[0] == g.order[0]  # both take the first step's argmax first
        assert s.step_logits == sorted(s.step_logits, reverse=True)
        assert s.step_logits[0] == pytest.approx(g.step_logits[0], abs=1e-5)
        assert sum(s.step_probs) == pytest.approx(1.0, abs=1e-5)
        assert s.tokens_generated == 1


def test_query_vector_after_passages(tiny_model, decode_reference, window_batch):
    """With a query-embedding token the prompt holds n + 1 placeholders; the candidates stay the n passages."""
    spec = PromptSpec("embedding", query_embedding=True)
    sizes = [3, 5]
    prompts, batch, pvs, cvs = window_batch(tiny_model, sizes, spec=spec, seed=2)
    queries = [tiny_model.embed_passages([f"query {i}"]) for i in range(2)]
    pvs = [torch.cat([p, q]) for p, q in zip(pvs, queries)]
    outputs = decode_listwise(tiny_model, batch["input_ids"], batch["attention_mask"], pvs, cvs)
    for n, prompt, pv, cv, out in zip(sizes, prompts, pvs, cvs, outputs):
        ref = decode_reference(tiny_model, prompt, pv, cv)
        assert out.order == ref.order and len(out.order) == n
    with pytest.raises(ValueError, match="vectors given"):
        decode_listwise(tiny_model, batch["input_ids"], batch["attention_mask"], cvs, cvs)


def test_rejects_right_padding_and_bad_mode(tiny_model, window_batch):
    _, batch, pvs, cvs = window_batch(tiny_model, [2, 3])
    right = tiny_model.tokenizer.padding_side
    assert right in ("left", "right")
    mask = batch["attention_mask"].flip(-1)
    with pytest.raises(ValueError, match="LEFT padding"):
        decode_listwise(tiny_model, batch["input_ids"].flip(-1), mask, pvs, cvs)
    with pytest.raises(ValueError, match="decode mode"):
        decode_listwise(tiny_model, batch["input_ids"], batch["attention_mask"], pvs, cvs, mode="beam")


def test_single_candidate_window(tiny_model, window_batch):
    _, batch, pvs, cvs = window_batch(tiny_model, [1, 2])
    outputs = decode_listwise(tiny_model, batch["input_ids"], batch["attention_mask"], pvs, cvs)
    assert outputs[0].order == [0] and outputs[0].step_probs == [pytest.approx(1.0)]
    assert sorted(outputs[1].order) == [0, 1]


def test_reference_prefix_with_max_steps(tiny_model, decode_reference, window_batch):
    prompts, _, pvs, cvs = window_batch(tiny_model, [6])
    full = decode_reference(tiny_model, prompts[0], pvs[0], cvs[0])
    ids = tiny_model.tokenizer(prompts[0], add_special_tokens=False, return_tensors="pt")["input_ids"]
    part = decode_listwise_reference(tiny_model, ids, pvs[0], cvs[0], max_steps=2)
    assert part.order == full.order[:2]


@pytest.mark.slow
def test_real_smollm2_window_of_20_equals_reference(window_batch):
    """SmolLM2-135M + MiniLM with an untrained projector: one window of 20, cached == recomputed.

    The full brute force (20 recomputations of a 135M-parameter LLM) takes over a minute on a busy 2-core
    CPU, so the first 3 steps are brute force (:func:`decode_listwise_reference`) and all 20 are checked by
    one uncached forward pass over the whole sequence (prompt + the chosen vectors): by causality, position
    ``T - 1 + k`` of that pass is exactly the state the brute force recomputes at step ``k``.
    """
    from perank.families.pe_rank.model import PERankModel

    model = PERankModel.build("smollm2", "all-minilm-l6-v2", dtype=torch.float32).eval()
    prompts, batch, pvs, cvs = window_batch(model, [20], seed=5)
    (out,) = decode_listwise(model, batch["input_ids"], batch["attention_mask"], pvs, cvs)
    assert sorted(out.order) == list(range(20))
    ids = model.tokenizer(prompts[0], add_special_tokens=False, return_tensors="pt")["input_ids"]
    ref = decode_listwise_reference(model, ids, pvs[0], cvs[0], max_steps=3)
    assert out.order[:3] == ref.order
    torch.testing.assert_close(torch.tensor(out.step_logits[:3]), torch.tensor(ref.step_logits), atol=1e-3, rtol=0)

    with torch.no_grad():
        prompt = model.inputs_embeds(ids, pvs[0])
        sequence = torch.cat([prompt, cvs[0][out.order[:-1]].unsqueeze(0)], dim=1)
        hidden, _ = model.hidden_states(sequence)
    states = hidden[0, ids.shape[1] - 1 :]
    available = torch.ones(20, dtype=torch.bool)
    for k, pick in enumerate(out.order):
        logits = (cvs[0].float() @ states[k].float()).masked_fill(~available, float("-inf"))
        assert int(logits.argmax()) == pick, f"step {k}"
        assert float(logits[pick]) == pytest.approx(out.step_logits[k], abs=1e-3)
        available[pick] = False


@pytest.mark.parametrize(("position", "query_text"), [("prompt", True), ("answer", True), ("answer", False)])
def test_training_logits_equal_inference_logits(tiny_model, position, query_text):
    """Teacher-forcing the greedy order through the training loss gives the decoder's own step logits, for
    either place of the query-embedding token, with or without the query's text: training and inference
    build the same sequence."""
    from perank.families.pe_rank.prompts import answer_prefix
    from perank.families.pe_rank.training.data import RankCollator, RankDataset
    from perank.families.pe_rank.training.model import PERankTrainingModel

    spec = PromptSpec("embedding", query_embedding=True, query_embedding_position=position, query_text=query_text)
    texts = [f"passage {j} " + "word " * j for j in range(5)]
    query = "a query about words"
    with torch.no_grad():
        cands = tiny_model.embed_passages(texts)
        qvec = tiny_model.embed_passages([query])
    prompt = tiny_model.tokenizer.apply_chat_template(
        messages(spec, query, texts), tokenize=False, add_generation_prompt=True
    ) + answer_prefix(spec)
    ids = tiny_model.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
    out = decode_listwise(tiny_model, ids["input_ids"], ids["attention_mask"], [torch.cat([cands, qvec])], [cands])[0]

    import json
    import tempfile
    from pathlib import Path

    row = {
        "qid": "1",
        "query": query,
        "messages_w_content": messages(PromptSpec("text-embedding", True, position, query_text), query, texts, True),
        "messages_wo_content": messages(spec, query, texts, True),
        "ranking": out.order,
        "extra_texts": texts + [texts[i] for i in out.order],
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.jsonl"
        path.write_text(json.dumps(row) + "\n", encoding="utf-8")
        ds = RankDataset(path, tiny_model.tokenizer, 2048, query_embedding=True, query_text=query_text)
        batch = RankCollator(tiny_model.tokenizer.pad_token_id)([ds[0]])
    trainer_model = PERankTrainingModel(tiny_model, cache_embeddings=False)
    with torch.no_grad():
        logits = trainer_model._window_logits(
            batch["input_ids_wo"], batch["attention_mask_wo"], [cands], [qvec], [torch.tensor(out.order)]
        )[0]
    chosen = logits[torch.arange(5), torch.tensor(out.order)]
    assert chosen.tolist() == pytest.approx(out.step_logits, abs=1e-4)


@pytest.mark.parametrize("mode", ["greedy", "single-pass"])
def test_prompt_prefix_reuse_equals_whole_prompt(tiny_model, mode, window_batch):
    """Prefilling the shared prefix once and decoding each window's remainder on top of it equals decoding
    the whole prompt; the prefix's cache is not consumed, so a second window can reuse it."""
    sizes = [5, 3, 7]
    prompts, batch, pvs, cvs = window_batch(tiny_model, sizes)
    whole = decode_listwise(tiny_model, batch["input_ids"], batch["attention_mask"], pvs, cvs, mode=mode)
    ids = [tiny_model.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    cut = [row.index(tiny_model.placeholder_id) for row in ids]
    assert len(set(cut)) == 3, "the rows' prefixes must have different lengths"
    prefix = prefill_prefix(tiny_model, [row[:c] for row, c in zip(ids, cut)])
    rest_ids, rest_mask = left_pad([row[c:] for row, c in zip(ids, cut)], pad_id=0)
    for _ in range(2):  # the same prefix twice: the first decode must not have extended its cache
        reused = decode_listwise(tiny_model, rest_ids, rest_mask, pvs, cvs, mode=mode, prefix=prefix)
        for c, w, r in zip(cut, whole, reused):
            assert r.order == w.order
            torch.testing.assert_close(torch.tensor(r.step_logits), torch.tensor(w.step_logits), atol=1e-4, rtol=0)
            assert r.tokens_processed == w.tokens_processed - c
    with pytest.raises(ValueError, match="prompt prefix"):
        decode_listwise(tiny_model, rest_ids[:2], rest_mask[:2], pvs[:2], cvs[:2], prefix=prefix)


def test_left_pad():
    ids, mask = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
