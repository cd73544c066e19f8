"""Shared fixtures: a TINY random-weight PE-Rank model built from configs, saved like a real one.

The tiny LLM is a 2-layer Llama (hidden 64) over SmolLM2's real tokenizer and chat template, and the tiny
encoder a 2-layer BERT (hidden 32) over MiniLM's real tokenizer, so prompts, special tokens and padding behave
exactly as with the real models while a forward pass costs milliseconds. Both are saved to folders and loaded
through the normal ``from_pretrained`` paths, which is what checkpoints and the rerankers do too.

The suite is laid out by layer (``core``, ``families``, ``pipeline``, ``training``, ``tools``, ``gpu``). What
more than one folder uses is a fixture here, helpers that are plain functions included, as factory fixtures
(``write_tiny_encoder(folder)``, ``rank_row(4)``, ``topic_request("q", 5)``, ...); what only one folder uses is
in that folder's conftest.py. Test modules never import each other or a conftest: what collection needs before
any fixture exists (paths, the families' tiny configurations for ``parametrize``) is in :mod:`helpers`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from helpers.paths import PEERS, REPO
from helpers.tiny import TinyDirs
from perank.ranking.family import Family
from perank.types import Candidate, Query, Request

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Commands the tests start as processes (src/scripts/*.py, benchmarks/run.py, `python -m perank`) import the
# installed package; this checkout's goes first, as pytest's own `pythonpath` puts it first for the tests.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
# On a small shared CPU, OpenMP threads that spin while waiting for a busy core make small matmuls 10-30x
# slower; one thread is the robust default for the test suite (PERANK_TEST_THREADS overrides it).
torch.set_num_threads(int(os.environ.get("PERANK_TEST_THREADS", "1")))


def save_tiny_llm(folder: Path, seed: int = 0, layers: int = 2) -> Path:
    """Save a random Llama of ``layers`` layers (2 by default) with SmolLM2's tokenizer to ``folder``."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from perank.backends.resolve import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("smollm2"))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
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


def save_tiny_encoder(folder: Path, seed: int = 0) -> Path:
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
    return TinyDirs(llm=save_tiny_llm(root / "llm"), encoder=save_tiny_encoder(root / "encoder"))


def build_tiny_model(dirs: TinyDirs, **kwargs: object):
    """A fresh tiny PE-Rank model (fp32, CPU, eval mode); keyword arguments go to ``PERankModel.build``."""
    from perank.families.pe_rank.model import PERankModel

    kwargs.setdefault("encoder_max_length", 64)
    kwargs.setdefault("dtype", torch.float32)
    return PERankModel.build(str(dirs.llm), str(dirs.encoder), **kwargs).eval()


@pytest.fixture(scope="session")
def make_tiny_model(tiny_dirs: TinyDirs) -> Callable[..., Any]:
    """``make_tiny_model(seed=4, device="cuda", ...)``: a fresh tiny PE-Rank model of its own (see
    :func:`build_tiny_model`), for tests that change or move it."""
    return lambda **kwargs: build_tiny_model(tiny_dirs, **kwargs)


@pytest.fixture(scope="session")
def write_tiny_llm() -> Callable[..., Path]:
    """``write_tiny_llm(folder, seed=0, layers=2)``: save a tiny random Llama with SmolLM2's tokenizer there."""
    return save_tiny_llm


@pytest.fixture(scope="session")
def write_tiny_encoder() -> Callable[..., Path]:
    """``write_tiny_encoder(folder, seed=0)``: save a tiny random BERT with MiniLM's tokenizer there."""
    return save_tiny_encoder


@pytest.fixture(scope="session")
def tiny_model(tiny_dirs: TinyDirs):
    """A shared tiny model: tests must not change it (build their own with ``make_tiny_model`` to do so)."""
    return build_tiny_model(tiny_dirs)


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_dirs: TinyDirs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model saved in perank's format without its LLM (like ``perank.cli.assemble`` writes)."""
    path = tmp_path_factory.mktemp("ckpt") / "tiny-pe-rank"
    build_tiny_model(tiny_dirs, seed=1).save_pretrained(path, save_llm=False)
    return path


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


@pytest.fixture(scope="session")
def tiny_reranker(tiny_fixtures: TinyResources) -> Callable[..., Any]:
    """``tiny_reranker(name, **extra)``: the reranker ``name`` built with its manifest's tiny configuration
    (:data:`helpers.catalogue.TINY`), ``extra`` overriding its options."""
    from helpers.catalogue import TINY
    from perank.ranking.registry import build_reranker

    return lambda name, **extra: build_reranker(name, **{**TINY[name](tiny_fixtures), **extra})


def _topic_request(qid: str, n: int, text: str = "passage about topic {i}") -> Request:
    cands = [Candidate(docid=f"d{qid}-{i}", text=text.format(i=i), score=float(n - i), rank=i + 1) for i in range(n)]
    return Request(query=Query(qid=qid, text=f"what is topic {qid}"), candidates=cands)


@pytest.fixture(scope="session")
def topic_request() -> Callable[..., Request]:
    """``topic_request(qid, n, text="passage about topic {i}")``: a request for "what is topic <qid>" with ``n``
    candidates ``d<qid>-<i>`` (``text`` formatted with ``i``), first-stage scores n - i."""
    return _topic_request


# Decoding: prompts of several windows and the brute-force decoder they are checked against.


def _window_batch(model, sizes: list[int], spec=None, seed: int = 0):
    from perank.families.pe_rank.prompts import PromptSpec, messages

    spec = spec or PromptSpec("embedding")
    gen = torch.Generator().manual_seed(seed)
    prompts, prompt_vectors, cand_vectors = [], [], []
    for row, n in enumerate(sizes):
        texts = [f"passage {row}-{j} " + "word " * int(torch.randint(0, 30, (1,), generator=gen)) for j in range(n)]
        with torch.no_grad():
            vectors = model.embed_passages(texts)
        query = f"query number {row}" + " more" * row
        prompts.append(
            model.tokenizer.apply_chat_template(
                messages(spec, query, texts), tokenize=False, add_generation_prompt=True
            )
        )
        cand_vectors.append(vectors)
        prompt_vectors.append(vectors)
    batch = model.tokenizer(prompts, add_special_tokens=False, padding=True, padding_side="left", return_tensors="pt")
    return prompts, batch, prompt_vectors, cand_vectors


def _decode_reference(model, prompt: str, prompt_vectors, cand_vectors):
    from perank.families.pe_rank.decoding import decode_listwise_reference

    ids = model.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    return decode_listwise_reference(model, ids, prompt_vectors, cand_vectors)


@pytest.fixture(scope="session")
def window_batch() -> Callable[..., tuple]:
    """``window_batch(model, sizes, spec=None, seed=0)`` -> ``(prompts, batch, prompt_vectors, cand_vectors)``:
    prompts for windows of the given sizes (different lengths), tokenized left padded, plus their vectors."""
    return _window_batch


@pytest.fixture(scope="session")
def decode_reference() -> Callable[..., Any]:
    """``decode_reference(model, prompt, prompt_vectors, cand_vectors)``: the brute-force decoder's output
    (:func:`perank.families.pe_rank.decoding.decode_listwise_reference`) for one untokenized prompt."""
    return _decode_reference


# Training: tiny model folders and rows in the training data's formats.

#: passage texts of the training rows
PASSAGES = [f"passage number {i} about topic {i % 3} with some words" for i in range(12)]


@pytest.fixture(scope="session")
def training_passages() -> list[str]:
    """The 12 passage texts the training rows (``rank_row``, ``align_row``) are made of."""
    return PASSAGES


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """``(llm_dir, encoder_dir)``: a 2-layer Llama with the SmolLM2 tokenizer and a 2-layer BERT with the MiniLM
    tokenizer, the training tests' models (the same as :func:`tiny_dirs`'s, in folders of their own)."""
    root = tmp_path_factory.mktemp("tiny")
    return str(save_tiny_llm(root / "tiny-llm")), str(save_tiny_encoder(root / "tiny-bert"))


def _rank_row(n: int = 4, query_embedding: bool = False, start: int = 0) -> dict:
    from perank.families.pe_rank.prompts import PromptSpec, messages

    texts = PASSAGES[start : start + n]
    ranking = list(reversed(range(n)))
    q = f"query about topic {start % 3}"
    return {
        "qid": str(start),
        "query": q,
        "messages_w_content": messages(PromptSpec("text-embedding", query_embedding), q, texts, True),
        "messages_wo_content": messages(PromptSpec("embedding", query_embedding), q, texts, True),
        "ranking": ranking,
        "extra_texts": texts + [texts[i] for i in ranking],
    }


@pytest.fixture(scope="session")
def rank_row() -> Callable[..., dict]:
    """``rank_row(n=4, query_embedding=False, start=0)``: a ranking row (stage 2) over ``PASSAGES[start:start+n]``,
    its gold ranking the reverse order."""
    return _rank_row


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="session")
def write_jsonl() -> Callable[[Path, list[dict]], Path]:
    """``write_jsonl(path, rows)``: one JSON object a line; returns ``path``."""
    return _write_jsonl
