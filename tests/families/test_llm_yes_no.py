"""``llm-yes-no`` (bge-reranker-v2-gemma) against FlagEmbedding's ``FlagLLMReranker`` on the tiny Gemma fixture
(golden_llm_yes_no.json, see tests/fixtures/peers/README.md), and the PEFT adapter loader it uses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from helpers.paths import PEERS
from perank.backends.lm_sources import load_language_model
from perank.families.llm_yes_no.reranker import LLMYesNoReranker
from perank.ranking.decoder_pair_inputs import PromptLayout, encode_pairs
from perank.ranking.registry import build_reranker
from perank.types import Candidate, InputError, Query, Request

TINY = PEERS / "bge-gemma-tiny"
GOLDEN = json.loads((PEERS / "golden_llm_yes_no.json").read_text(encoding="utf-8"))
PAIRS = [tuple(p) for p in GOLDEN["pairs"]]
RUNS = {run["max_length"]: run for run in GOLDEN["runs"]}
TOL = 1e-4


def largest_difference(a: list[float], b: list[float]) -> float:
    assert len(a) == len(b)
    return max(abs(x - y) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def rankers() -> dict[tuple[int, str], LLMYesNoReranker]:
    return {
        (m, side): LLMYesNoReranker(str(TINY), device="cpu", max_length=m, padding_side=side)
        for m in RUNS
        for side in ("left", "right")
    }


def test_golden_is_for_this_fixture() -> None:
    import hashlib

    for name, digest in GOLDEN["sha256"].items():
        assert hashlib.sha256((TINY / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize("max_length", sorted(RUNS))
@pytest.mark.parametrize("side", ["left", "right"])
def test_scores_match_flagembedding(rankers: dict, max_length: int, side: str) -> None:
    ranker, run = rankers[(max_length, side)], RUNS[max_length]
    assert ranker.yes_id == GOLDEN["yes_token_id"]
    # all pairs (different lengths) in one padded batch, as the peer's default batch of 128 does
    assert largest_difference(ranker.compute_score(PAIRS), run["scores"]) < TOL
    assert largest_difference(ranker.compute_score(PAIRS, normalize=True), run["scores_normalized"]) < TOL
    singles = [ranker.compute_score(p)[0] for p in PAIRS]
    assert largest_difference(singles, run["scores_batch_size_1"]) < TOL


def test_left_and_right_padding_agree(rankers: dict) -> None:
    left, right = rankers[(512, "left")], rankers[(512, "right")]
    assert largest_difference(left.compute_score(PAIRS), right.compute_score(PAIRS)) < 1e-5


@pytest.mark.parametrize("max_length", sorted(RUNS))
def test_input_ids_are_flagembeddings(rankers: dict, max_length: int) -> None:
    ranker = rankers[(max_length, "left")]
    encoded = encode_pairs(ranker.tokenizer, ranker.layout, PAIRS, ranker.max_query_length, max_length)
    assert [e.input_ids for e in encoded] == RUNS[max_length]["input_ids"]
    long_pair = encoded[4]  # 8 passages joined: cut to the budget, then sep + prompt appended uncut
    assert long_pair.truncated
    assert long_pair.input_ids[-len(ranker.layout.prompt) :] == ranker.layout.prompt
    assert long_pair.input_ids[0] == ranker.tokenizer.bos_token_id  # bos != pad: prepended


def test_layout_without_a_distinct_bos() -> None:
    class Tok:
        bos_token_id, pad_token_id, truncation_side = 5, 5, "right"

        def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
            return {"input_ids": [ord(c) for c in text]}

    layout = PromptLayout.from_tokenizer(Tok(), "P")
    assert layout.bos == [] and layout.sep == [10] and layout.prompt == [80]


def test_rerank_counts_truncation_and_tokens(rankers: dict) -> None:
    ranker = rankers[(32, "left")]
    cands = [Candidate(docid=f"d{i}", text=p, score=0.0, rank=i + 1) for i, (_, p) in enumerate(PAIRS[:2])]
    result = ranker.rerank([Request(query=Query(qid="q", text=PAIRS[0][0]), candidates=cands)])[0]  # same query
    expected = [RUNS[32]["scores"][i] for i in range(2)]
    assert sorted(c.score for c in result.candidates) == pytest.approx(sorted(expected), abs=TOL)
    assert result.stats["truncated_passages"] == 2
    assert result.stats["tokens_processed"] == sum(len(ids) for ids in RUNS[32]["input_ids"][:2])


def test_bad_input(rankers: dict) -> None:
    ranker = rankers[(512, "left")]
    for bad in ([("q",)], [("q", "p", "x")], [("q", 3)], ["q", "p", "r"]):
        with pytest.raises(InputError, match=r"pairs\[0\]"):
            ranker.compute_score(bad)
    assert ranker.compute_score([]) == []
    with pytest.raises(InputError, match="padding_side 'middle'"):
        LLMYesNoReranker(lm=ranker.lm, padding_side="middle")
    with pytest.raises(InputError, match="no option 'llm'"):  # a loaded model comes as lm=, one handle
        build_reranker("llm-yes-no", llm=ranker.lm.model)
    with pytest.raises(InputError, match="option lm=.*expected LanguageModel"):
        build_reranker("llm-yes-no", lm=ranker.lm.model)
    with pytest.raises(InputError, match="prompt: empty"):
        LLMYesNoReranker(lm=ranker.lm, prompt=" ")
    with pytest.raises(InputError, match="batch_sise"):
        build_reranker("bge-reranker-gemma", model_path=str(TINY), batch_sise=4)
    with pytest.raises(InputError, match="nobody/absent-reranker"):
        LLMYesNoReranker("nobody/absent-reranker", device="cpu")


def write_adapter(tmp_path: Path) -> Path:
    """A LoRA adapter on the tiny Gemma with non-zero B matrices (a fresh one would change nothing)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(TINY), dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    out = tmp_path / "adapter"
    model.save_pretrained(out)
    return out


def test_adapter_folder_loads_merged(tmp_path: Path) -> None:
    adapter = write_adapter(tmp_path)
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert Path(config["base_model_name_or_path"]).resolve() == TINY.resolve()
    lm = load_language_model(adapter, device="cpu", dtype=torch.float32)
    assert not hasattr(lm.model, "peft_config")  # merged into a plain model
    assert lm.tokenizer.bos_token_id == 2  # no tokenizer beside the adapter: the base's
    with_adapter = LLMYesNoReranker(str(adapter), device="cpu").compute_score(PAIRS[:3])
    plain = RUNS[512]["scores"][:3]
    assert largest_difference(with_adapter, plain) > 1e-3  # the adapter changed the scores


def test_adapter_with_a_missing_base_names_it(tmp_path: Path) -> None:
    adapter = write_adapter(tmp_path)
    for base in (str(tmp_path / "gone-base"), "nobody/absent-base"):
        config = json.loads((adapter / "adapter_config.json").read_text())
        config["base_model_name_or_path"] = base
        (adapter / "adapter_config.json").write_text(json.dumps(config))
        with pytest.raises(InputError, match=f"base model {base}"):
            LLMYesNoReranker(str(adapter), device="cpu")
    (adapter / "adapter_model.safetensors").unlink()
    with pytest.raises(InputError, match="no adapter_model"):
        load_language_model(adapter, device="cpu")


def test_plain_folder_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no config.json"):
        load_language_model(empty, device="cpu")
    cut = tmp_path / "cut"
    shutil.copytree(TINY, cut)
    data = (cut / "model.safetensors").read_bytes()
    (cut / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated"):
        load_language_model(cut, device="cpu")
