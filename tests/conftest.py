"""Shared fixtures: a TINY random-weight PE-Rank model built from configs, saved like a real one.

The tiny LLM is a 2-layer Llama (hidden 64) over SmolLM2's real tokenizer and chat template, and the tiny
encoder a 2-layer BERT (hidden 32) over MiniLM's real tokenizer, so prompts, special tokens and padding behave
exactly as with the real models while a forward pass costs milliseconds. Both are saved to folders and loaded
through the normal ``from_pretrained`` paths, which is what checkpoints and the rerankers do too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from perank.ranking.family import Family

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Commands the tests start as processes (src/scripts/*.py, benchmarks/run.py, `python -m perank`) import the
# installed package; this checkout's goes first, as pytest's own `pythonpath` puts it first for the tests.
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, [str(Path(__file__).resolve().parents[1] / "src"), os.environ.get("PYTHONPATH")])
)
# On a small shared CPU, OpenMP threads that spin while waiting for a busy core make small matmuls 10-30x
# slower; one thread is the robust default for the test suite (PERANK_TEST_THREADS overrides it).
torch.set_num_threads(int(os.environ.get("PERANK_TEST_THREADS", "1")))


@dataclass(frozen=True)
class TinyDirs:
    """Folders holding the tiny LLM (with tokenizer) and the tiny encoder (with tokenizer)."""

    llm: Path
    encoder: Path


def write_tiny_llm(folder: Path, seed: int = 0) -> Path:
    """Save a 2-layer random Llama with SmolLM2's tokenizer to ``folder``."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from perank.backends.resolve import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("smollm2"))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_tiny_encoder(folder: Path, seed: int = 0) -> Path:
    """Save a 2-layer random BERT with MiniLM's tokenizer to ``folder``."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from perank.backends.resolve import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("all-minilm-l6-v2"))
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> TinyDirs:
    root = tmp_path_factory.mktemp("tiny")
    return TinyDirs(llm=write_tiny_llm(root / "llm"), encoder=write_tiny_encoder(root / "encoder"))


def build_tiny_model(dirs: TinyDirs, **kwargs: object):
    """A fresh tiny PE-Rank model (fp32, CPU, eval mode); keyword arguments go to ``PERankModel.build``."""
    from perank.families.pe_rank.model import PERankModel

    kwargs.setdefault("encoder_max_length", 64)
    kwargs.setdefault("dtype", torch.float32)
    return PERankModel.build(str(dirs.llm), str(dirs.encoder), **kwargs).eval()


@pytest.fixture(scope="session")
def tiny_model(tiny_dirs: TinyDirs):
    """A shared tiny model: tests must not change it (build their own with ``build_tiny_model`` to do so)."""
    return build_tiny_model(tiny_dirs)


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_dirs: TinyDirs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model saved in perank's format without its LLM (like ``perank.cli.assemble`` writes)."""
    path = tmp_path_factory.mktemp("ckpt") / "tiny-pe-rank"
    build_tiny_model(tiny_dirs, seed=1).save_pretrained(path, save_llm=False)
    return path


#: tiny checkpoints in the published layouts of the peer families (see fixtures/peers/README.md)
PEERS = Path(__file__).resolve().parent / "fixtures" / "peers"


@dataclass(frozen=True)
class TinyResources:
    """The tiny models, as the families' manifests read them to build themselves small
    (:class:`perank.ranking.family.TinyFixtures`)."""

    encoder_dir: Path
    peers_dir: Path
    pe_rank_model: Any

    def language_model(self) -> Any:
        from perank.backends.hf_lm import HFLanguageModel

        return HFLanguageModel(self.pe_rank_model.llm, self.pe_rank_model.tokenizer)


@pytest.fixture(scope="session")
def tiny_fixtures(tiny_dirs: TinyDirs, tiny_model) -> TinyResources:
    """What a manifest's tiny configuration is given (``entry.tiny(tiny_fixtures)`` -> constructor options)."""
    return TinyResources(encoder_dir=tiny_dirs.encoder, peers_dir=PEERS, pe_rank_model=tiny_model)


@dataclass(frozen=True)
class LoadedEntryPoint:
    """An installed package's ``perank.families`` entry point, as :mod:`perank.ranking.catalogue` reads one."""

    name: str
    family: Family = field(repr=False)
    value: str = "tests:FAMILY"

    def load(self) -> Family:
        return self.family


@pytest.fixture()
def install_family(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """``install_family(Family(...))``: the family is found as an installed package's would be, through an entry
    point of the group ``perank.families`` (the lookup faked); the catalogue is rebuilt, and rebuilt again after."""
    from perank.ranking import catalogue

    installed: list[Family] = []
    real = catalogue.entry_points

    def entry_points(*, group: str) -> list[Any]:
        points = list(real(group=group))
        if group == catalogue.ENTRY_POINT_GROUP:
            points += [LoadedEntryPoint(family.name, family) for family in installed]
        return points

    monkeypatch.setattr(catalogue, "entry_points", entry_points)

    def install(*families: Family) -> None:
        installed.extend(families)
        catalogue.catalogue.cache_clear()

    yield install
    catalogue.catalogue.cache_clear()
