"""The language-model handle (perank.backends.lm): loading, capabilities, describe(), and the families' use of it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from perank.backends.hf_lm import HFLanguageModel
from perank.backends.lm import CAUSAL_LM_CAPABILITIES, Capability, LanguageModel, Sampling
from perank.ranking.registry import build_reranker
from perank.types import InputError

TINY = Path(__file__).parent / "fixtures" / "peers" / "bge-gemma-tiny"


@pytest.fixture(scope="module")
def tiny_lm() -> LanguageModel:
    return LanguageModel.from_pretrained(TINY, device="cpu", dtype="float32")


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
        LanguageModel.from_pretrained(tmp_path, device="cpu")
    with pytest.raises(InputError, match=str(tmp_path / "gone")):
        LanguageModel.from_pretrained(tmp_path / "gone" / "model", device="cpu")


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
