"""The language-model handle (perank.backends.lm): loading, capabilities, describe(), and the families' use of it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers.paths import PEERS
from perank.backends.hf_lm import HFLanguageModel
from perank.backends.lm import CAUSAL_LM_CAPABILITIES, Capability, LanguageModel, Sampling
from perank.backends.lm_sources import load_language_model
from perank.ranking.registry import build_reranker
from perank.types import InputError

TINY = PEERS / "bge-gemma-tiny"


@pytest.fixture(scope="module")
def tiny_lm() -> LanguageModel:
    return load_language_model(TINY, device="cpu", dtype="float32")


def test_from_pretrained_folder(tiny_lm: LanguageModel) -> None:
    assert isinstance(tiny_lm, HFLanguageModel)
    assert tiny_lm.name == str(TINY)
    assert tiny_lm.device == torch.device("cpu")
    assert tiny_lm.dtype == torch.float32
    assert not tiny_lm.model.training  # loaded in eval mode
    assert tiny_lm.token_id("Yes") == tiny_lm.encode("Yes", special=False)[0]
    assert tiny_lm.describe() == {
        "model": str(TINY),
        "dtype": "float32",
        "device": "cpu",
        "attention": "sdpa",
        "chat_template": tiny_lm.has_chat_template,
        "capabilities": ["generate", "loglik", "next_token_logits"],
    }


def test_from_pretrained_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no config.json"):
        load_language_model(tmp_path, device="cpu")
    with pytest.raises(InputError, match=str(tmp_path / "gone")):
        load_language_model(tmp_path / "gone" / "model", device="cpu")


def test_a_model_given_loaded_is_named_by_its_config(tiny_lm: HFLanguageModel) -> None:
    given = HFLanguageModel(tiny_lm.model, tiny_lm.tokenizer)
    assert given.name == tiny_lm.model.config.name_or_path
    assert given.describe()["attention"] is None  # not known for a model given already loaded
    assert HFLanguageModel(tiny_lm.model, tiny_lm.tokenizer, name="mine").name == "mine"


def test_reads_agree(tiny_lm: HFLanguageModel) -> None:
    """loglik of one token is the log-softmax of next_token_logits; greedy is their argmax; generate writes."""
    prompt, other = tiny_lm.encode("how long do fleas live"), tiny_lm.encode("x")
    logits = tiny_lm.next_token_logits([prompt, other])
    best = int(logits[0].argmax())
    assert tiny_lm.greedy_next_tokens([prompt, other])[0] == best
    (got,) = tiny_lm.loglik([prompt], [[best]])
    assert got == pytest.approx(float(torch.log_softmax(logits[0], -1)[best]), abs=1e-4)
    out = tiny_lm.generate(["fleas", "a longer prompt about fleas"], 3, sampling=Sampling())
    assert len(out.texts) == 2 and all(1 <= n <= 3 for n in out.new_tokens)
    assert out.prompt_tokens[0] < out.prompt_tokens[1]


class GenerationOnly(LanguageModel):
    """A backend that serves generation only (as a text-completion server would): the reads it lacks refuse."""

    def __init__(self, tokenizer: object) -> None:
        super().__init__(tokenizer, name="a-server", capabilities=frozenset({Capability.GENERATE}))


def test_require_names_the_family_and_the_missing_capability(tiny_lm: LanguageModel) -> None:
    tiny_lm.require(CAUSAL_LM_CAPABILITIES, "llm-pointwise")  # has them all
    server = GenerationOnly(tiny_lm.tokenizer)
    with pytest.raises(InputError, match="^llm-pointwise needs loglik, next_token_logits; the language model a-server"):
        server.require({Capability.LOGLIK, Capability.NEXT_TOKEN_LOGITS}, "llm-pointwise")
    with pytest.raises(InputError, match="llm-layerwise needs layer_scores"):
        tiny_lm.require({Capability.LAYER_SCORES}, "llm-layerwise")
    with pytest.raises(InputError, match="^the language model a-server has no loglik$"):
        server.loglik([[1]], [[2]])


@pytest.mark.parametrize("family", ["llm-pointwise", "llm-pairwise", "llm-setwise"])
def test_a_family_refuses_a_handle_without_what_it_needs(tiny_lm: LanguageModel, family: str) -> None:
    with pytest.raises(InputError, match=f"^{family} needs loglik, next_token_logits; the language model a-server"):
        build_reranker(family, lm=GenerationOnly(tiny_lm.tokenizer))


# ------------------------------------------------------------------------------------------ the other sources

LAYERWISE = PEERS / "minicpm-layerwise-tiny"


def test_a_layerwise_checkpoint_gives_the_layer_scores_backend(tiny_lm: LanguageModel) -> None:
    from perank.backends.layerwise_lm import LayerwiseLanguageModel

    lm = load_language_model(LAYERWISE, device="cpu", dtype="float32")
    assert isinstance(lm, LayerwiseLanguageModel)
    assert lm.describe()["capabilities"] == ["layer_scores"]
    assert lm.scored_layers() == range(1, 5)
    rows = [lm.encode("A: fleas\nB: they live months", special=False), lm.encode("A: x\nB: y", special=False)]
    two, four = lm.layer_scores(rows, [2, 4])
    assert lm.layer_scores(rows, [4], padding_side="right", pad_to_multiple_of=8)[0] == pytest.approx(four, abs=1e-5)
    assert lm.layer_scores(rows[:1], [2])[0] == pytest.approx(two[:1], abs=1e-5)  # padding changes nothing
    with pytest.raises(InputError, match=r"layers \[4, 2\]: expected sorted"):
        lm.layer_scores(rows, [4, 2])
    with pytest.raises(InputError, match="^llm-pointwise needs loglik, next_token_logits; the language model .*tiny"):
        build_reranker("llm-pointwise", lm=lm)
    with pytest.raises(InputError, match="^llm-yes-no needs next_token_logits"):
        build_reranker("llm-yes-no", lm=lm)
    with pytest.raises(InputError, match="^llm-layerwise needs layer_scores; the language model .* has none"):
        build_reranker("llm-layerwise", lm=tiny_lm)
    with pytest.raises(InputError, match="has no layer_scores$"):
        tiny_lm.layer_scores(rows, [1])


def test_a_pe_rank_checkpoint_gives_its_decoder(tmp_path: Path, make_tiny_model) -> None:
    """The handle of a PE-Rank checkpoint is the LLM pe-rank itself loads (the same loader), LoRA merged."""
    from peft import LoraConfig, get_peft_model

    from perank.families.pe_rank.checkpoint import load_pe_rank

    model = make_tiny_model(seed=3)
    model.llm = get_peft_model(model.llm, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in model.llm.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.2)
    model.save_pretrained(tmp_path / "pe-rank")
    lm = load_language_model(tmp_path / "pe-rank", device="cpu", dtype="float32")
    assert isinstance(lm, HFLanguageModel) and not hasattr(lm.model, "peft_config")
    assert lm.describe()["capabilities"] == ["generate", "loglik", "next_token_logits"]
    assert "<RANK>" in lm.tokenizer.get_vocab()  # the checkpoint's tokenizer
    merged = model.llm.merge_and_unload().state_dict()
    pe_rank = load_pe_rank(tmp_path / "pe-rank", dtype=torch.float32).llm.state_dict()
    for key, value in lm.model.state_dict().items():
        torch.testing.assert_close(value, pe_rank[key])
        torch.testing.assert_close(value, merged[key])
    assert len(lm.generate(["fleas"], 2).texts) == 1
