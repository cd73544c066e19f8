"""``llm-layerwise`` (bge-reranker-v2-minicpm-layerwise) against FlagEmbedding's ``LayerWiseFlagLLMReranker`` on
the tiny MiniCPM fixture (golden_llm_layerwise.json, see tests/fixtures/peers/README.md)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from helpers.paths import PEERS
from perank.families.llm_layerwise.reranker import LLMLayerwiseReranker
from perank.ranking.decoder_pair_inputs import encode_pairs
from perank.ranking.registry import build_reranker
from perank.types import InputError

TINY = PEERS / "minicpm-layerwise-tiny"
GOLDEN = json.loads((PEERS / "golden_llm_layerwise.json").read_text(encoding="utf-8"))
PAIRS = [tuple(p) for p in GOLDEN["pairs"]]
TOL = 1e-4


def largest_difference(a: list, b: list) -> float:
    if a and isinstance(a[0], list):
        assert len(a) == len(b)
        return max(largest_difference(x, y) for x, y in zip(a, b))
    assert len(a) == len(b)
    return max(abs(x - y) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def rankers() -> dict[tuple[int, str], LLMLayerwiseReranker]:
    return {
        (m, side): LLMLayerwiseReranker(str(TINY), device="cpu", max_length=m, padding_side=side)
        for m in (512, 32)
        for side in ("left", "right")
    }


def test_golden_is_for_this_fixture() -> None:
    for name, digest in GOLDEN["sha256"].items():
        assert hashlib.sha256((TINY / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize("run", GOLDEN["runs"], ids=lambda r: f"{r['cutoff_layers']}-{r['max_length']}")
@pytest.mark.parametrize("side", ["left", "right"])
def test_scores_match_flagembedding(rankers: dict, run: dict, side: str) -> None:
    ranker = rankers[(run["max_length"], side)]
    kwargs = {} if run["cutoff_layers"] is None else {"cutoff_layers": run["cutoff_layers"]}
    assert largest_difference(ranker.compute_score(PAIRS, **kwargs), run["scores"]) < TOL
    singles = [ranker.compute_score(p, **kwargs) for p in PAIRS]
    if isinstance(run["scores_batch_size_1"][0], list):  # one list per layer: transpose the single-pair calls
        singles = [[s[k][0] for s in singles] for k in range(len(run["scores_batch_size_1"]))]
    else:
        singles = [s[0] for s in singles]
    assert largest_difference(singles, run["scores_batch_size_1"]) < TOL


def test_input_ids_are_flagembeddings(rankers: dict) -> None:
    ranker = rankers[(512, "left")]
    encoded = encode_pairs(ranker.tokenizer, ranker.layout, PAIRS, ranker.max_query_length, 512)
    assert [e.input_ids for e in encoded] == GOLDEN["input_ids_max_length_512"]


def test_cutoffs(rankers: dict) -> None:
    ranker = rankers[(512, "left")]
    by_layer = ranker.compute_score(PAIRS[:3], cutoff_layers=[4, 2, 2, 0, 9])  # sorted, deduplicated, 0/9 dropped
    assert len(by_layer) == 2
    assert by_layer[0] == pytest.approx(ranker.compute_score(PAIRS[:3], cutoff_layers=2), abs=1e-6)
    assert by_layer[1] == pytest.approx(ranker.compute_score(PAIRS[:3]), abs=1e-6)
    assert ranker.compute_score(PAIRS[:2], cutoff_layers=[2, 3], normalize=True)[0][0] < 1
    assert ranker.compute_score([], cutoff_layers=[2, 3]) == [[], []]
    with pytest.raises(InputError, match="none within this model's scored layers 1..4"):
        ranker.compute_score(PAIRS[:1], cutoff_layers=[0, 5])
    with pytest.raises(InputError, match=r"pairs\[1\]"):
        ranker.compute_score([PAIRS[0], ("q",)], cutoff_layers=[2, 3])
    third = LLMLayerwiseReranker(str(TINY), device="cpu", cutoff_layer=3)
    assert third.describe()["cutoff_layer"] == 3
    assert third.compute_score(PAIRS[:3]) == pytest.approx(ranker.compute_score(PAIRS[:3], cutoff_layers=3), abs=1e-6)
    with pytest.raises(InputError, match="cutoff_layer 7: must be between 1 and 4"):
        build_reranker("bge-reranker-minicpm-layerwise", model_path=str(TINY), cutoff_layer=7)


def test_bad_checkpoints(tmp_path: Path) -> None:
    def variant(name: str, **config_changes: object) -> Path:
        folder = tmp_path / name
        shutil.copytree(TINY, folder)
        config = json.loads((folder / "config.json").read_text())
        config.update(config_changes)
        (folder / "config.json").write_text(json.dumps(config))
        return folder

    with pytest.raises(InputError, match="head_type 'complex' is not implemented here"):
        LLMLayerwiseReranker(str(variant("complex", head_type="complex")), device="cpu")
    with pytest.raises(InputError, match="nostart: cannot load this causal LM"):  # no start_layer: a plain MiniCPM
        LLMLayerwiseReranker(str(_without_start(tmp_path)), device="cpu")
    short = variant("short")
    state = load_file(str(short / "model.safetensors"))
    del state["lm_head.3.linear_head.weight"]
    save_file(state, str(short / "model.safetensors"))
    with pytest.raises(InputError, match=r"missing lm_head\.3\.linear_head\.weight"):
        LLMLayerwiseReranker(str(short), device="cpu")
    with pytest.raises(InputError, match="trust_remote_code"):
        LLMLayerwiseReranker(str(TINY), device="cpu", trust_remote_code=True)  # FlagEmbedding's code: not here
    with pytest.raises(InputError, match="folder: no such model folder"):
        LLMLayerwiseReranker(str(tmp_path / "absent" / "folder"), device="cpu")


def _without_start(tmp_path: Path) -> Path:
    folder = tmp_path / "nostart"
    shutil.copytree(TINY, folder)
    config = json.loads((folder / "config.json").read_text())
    del config["start_layer"]
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_compute_score_leaves_the_ranker_as_it_was(rankers: dict) -> None:
    """Several cutoffs are read without changing the ranker for the call, and ranking's statistics carry no
    per-layer scores (they are scores, not accounting)."""
    ranker = rankers[(512, "left")]
    state = dict(vars(ranker))
    ranker.compute_score(PAIRS[:3], cutoff_layers=[2, 3])
    assert vars(ranker) == state
    result = ranker.rank(PAIRS[0][0], [p for _, p in PAIRS[:3]])
    assert not [key for key in result.stats if key.startswith("layer_")]
    expected = sorted(ranker.compute_score([(PAIRS[0][0], p) for _, p in PAIRS[:3]]), reverse=True)
    assert [c.score for c in result.candidates] == pytest.approx(expected, abs=1e-6)
