"""Loading every checkpoint layout: perank's own (full, LoRA, projector-only) and the original's released ones.

The released layouts are written here by hand, exactly as the original code lays them out (REFERENCE.md,
"Released checkpoint layout"): a ``config.json`` carrying the encoder fields and a custom ``model_type``, the
state dict with ``model.encoder.encoder.*`` (the original wraps the HF encoder as ``.encoder``) and
``model.projector.0.*``/``model.projector.2.*``; ``projector.bin``; ``non_lora_trainables.bin``.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from helpers.paths import REPO
from helpers.tiny import TinyDirs
from perank.backends.pe_rank_backbone import base_model_type
from perank.families.pe_rank.checkpoint import checkpoint_format, load_pe_rank
from perank.families.pe_rank.projector import build_projector
from perank.families.pe_rank.prompts import PLACEHOLDER, RANK_TOKEN
from perank.families.pe_rank.released import infer_projector_type
from perank.families.pe_rank.reranker import PERankReranker
from perank.types import Candidate, Query, Request

ENC_DIM, LLM_DIM = 32, 64


def encoder_fields(dirs: TinyDirs, projector_type: str = "mlp2x_gelu") -> dict:
    return {
        "encoder_name": str(dirs.encoder),
        "encoder_pooling": "mean",
        "projector_type": projector_type,
        "embedding_size": ENC_DIM,
        "use_proj": True,
    }


def random_projector(projector_type: str = "mlp2x_gelu", seed: int = 3) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return {k: v.detach().clone() for k, v in build_projector(projector_type, ENC_DIM, LLM_DIM).state_dict().items()}


def random_encoder_state(dirs: TinyDirs, seed: int = 7) -> dict[str, torch.Tensor]:
    """Weights of the tiny encoder's architecture that differ from the ones saved in its folder."""
    from transformers import AutoConfig, AutoModel

    torch.manual_seed(seed)
    model = AutoModel.from_config(AutoConfig.from_pretrained(dirs.encoder))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def llm_state(dirs: TinyDirs) -> tuple[dict, dict[str, torch.Tensor]]:
    from transformers import AutoModelForCausalLM

    llm = AutoModelForCausalLM.from_pretrained(dirs.llm, dtype=torch.float32)
    state = {k: v.detach().clone() for k, v in llm.state_dict().items() if k != "lm_head.weight"}  # tied
    return llm.config.to_dict(), state


def released_tokenizer(dirs: TinyDirs, folder: Path) -> None:
    """The released tokenizer already has the two tokens (beyond the LLM's embedding rows)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(dirs.llm)
    tok.add_tokens([PLACEHOLDER], special_tokens=True)
    tok.add_tokens([RANK_TOKEN], special_tokens=True)
    tok.save_pretrained(folder)


def ranks(model) -> list[str]:
    cands = [Candidate(docid=str(i), text=f"passage number {i}") for i in range(5)]
    (result,) = PERankReranker(model=model).rerank([Request(Query("q", "a query"), cands)])
    assert sorted(c.docid for c in result.candidates) == [str(i) for i in range(5)]
    return [c.docid for c in result.candidates]


def assert_state_equal(module: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    actual = module.state_dict()
    for key, value in expected.items():
        torch.testing.assert_close(actual[key].float().cpu(), value.float(), msg=key)


# ---------------------------------------------------------------------------------------------- released: full


def write_released_full(dirs: TinyDirs, folder: Path, fmt: str = "safetensors", projector_type: str = "mlp2x_gelu"):
    folder.mkdir(parents=True)
    config, state = llm_state(dirs)
    config.update(encoder_fields(dirs, projector_type))
    config["model_type"] = "embed_llama"
    config["architectures"] = ["EmbedLlamaForRankLM"]
    (folder / "config.json").write_text(json.dumps(config))
    enc = random_encoder_state(dirs)
    proj = random_projector(projector_type)
    state.update({f"model.encoder.encoder.{k}": v for k, v in enc.items()})
    if projector_type == "linear":  # the original's linear projector is a bare nn.Linear
        state.update({f"model.projector.{k[2:]}": v for k, v in proj.items()})
    else:
        state.update({f"model.projector.{k}": v for k, v in proj.items()})
    if fmt == "safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))
    else:
        torch.save(state, folder / "pytorch_model.bin")
    released_tokenizer(dirs, folder)
    return state, enc, proj


@pytest.mark.parametrize(("fmt", "projector_type"), [("safetensors", "mlp2x_gelu"), ("bin", "linear")])
def test_released_full_checkpoint(tiny_dirs, tmp_path, fmt, projector_type):
    folder = tmp_path / "released"
    state, enc, proj = write_released_full(tiny_dirs, folder, fmt, projector_type)
    assert checkpoint_format(folder) == "released-full"
    model = load_pe_rank(folder, dtype=torch.float32)
    assert model.config.projector_type == projector_type
    assert_state_equal(model.projector, proj)
    assert_state_equal(model.encoder.model, enc)
    torch.testing.assert_close(model.llm.model.norm.weight, state["model.norm.weight"])
    torch.testing.assert_close(model.llm.model.embed_tokens.weight, state["model.embed_tokens.weight"])
    assert len(model.tokenizer) > model.llm.get_input_embeddings().weight.shape[0]  # fine: rows never read
    assert model.config.encoder_max_length == 512
    assert len(ranks(model)) == 5


def test_released_full_missing_weights(tiny_dirs, tmp_path):
    folder = tmp_path / "released"
    write_released_full(tiny_dirs, folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_pe_rank(folder)


# ---------------------------------------------------------------------------------------------- released: projector


def write_projector_only(dirs: TinyDirs, folder: Path, prefix: str = "base_model.model.") -> dict:
    folder.mkdir(parents=True)
    config, _ = llm_state(dirs)
    config.update(encoder_fields(dirs))
    config["model_type"] = "embed_llama"
    config["_name_or_path"] = str(dirs.llm)
    (folder / "config.json").write_text(json.dumps(config))
    proj = random_projector()
    torch.save({f"{prefix}model.projector.{k}": v for k, v in proj.items()}, folder / "projector.bin")
    return proj


def test_released_projector_only(tiny_dirs, tmp_path):
    proj = write_projector_only(tiny_dirs, tmp_path / "stage1")
    assert checkpoint_format(tmp_path / "stage1") == "released-projector"
    model = load_pe_rank(tmp_path / "stage1", dtype=torch.float32)
    assert_state_equal(model.projector, proj)
    assert model.config.llm_name == str(tiny_dirs.llm)
    # the encoder keeps its own pretrained weights
    from transformers import AutoModel

    assert_state_equal(model.encoder.model, AutoModel.from_pretrained(tiny_dirs.encoder).state_dict())
    assert len(ranks(model)) == 5


def test_released_projector_only_with_model_base(tiny_dirs, tmp_path):
    folder = tmp_path / "stage1"
    proj = write_projector_only(tiny_dirs, folder, prefix="")
    config = json.loads((folder / "config.json").read_text())
    config["_name_or_path"] = "/nowhere/base"
    (folder / "config.json").write_text(json.dumps(config))
    model = load_pe_rank(folder, model_base=str(tiny_dirs.llm), dtype=torch.float32)
    assert_state_equal(model.projector, proj)


def test_released_projector_missing(tiny_dirs, tmp_path):
    folder = tmp_path / "stage1"
    write_projector_only(tiny_dirs, folder)
    (folder / "projector.bin").unlink()
    with pytest.raises(FileNotFoundError, match="projector.bin"):
        load_pe_rank(folder)


# ---------------------------------------------------------------------------------------------- released: LoRA


def write_released_lora(dirs: TinyDirs, folder: Path):
    """Adapter (peft's own files), non-LoRA trainables and projector, as the original's LoRA run saves them."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(dirs.llm, dtype=torch.float32)
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(11)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_" in name:
                param.normal_(std=0.2)
    peft_model.save_pretrained(folder)
    norm = torch.rand(LLM_DIM) + 0.5
    proj = random_projector(seed=5)
    non_lora = {"base_model.model.model.norm.weight": norm}
    non_lora.update({f"base_model.model.model.projector.{k}": v for k, v in proj.items()})
    torch.save(non_lora, folder / "non_lora_trainables.bin")
    torch.save({f"base_model.model.model.projector.{k}": v for k, v in proj.items()}, folder / "projector.bin")
    config, _ = llm_state(dirs)
    config.update(encoder_fields(dirs))
    config["model_type"] = "embed_llama"
    (folder / "config.json").write_text(json.dumps(config))
    merged = copy.deepcopy(peft_model).merge_and_unload()
    with torch.no_grad():
        merged.model.norm.weight.copy_(norm)
    return merged, proj


def test_released_lora(tiny_dirs, tmp_path):
    folder = tmp_path / "lora"
    merged, proj = write_released_lora(tiny_dirs, folder)
    assert checkpoint_format(folder) == "released-lora"
    model = load_pe_rank(folder, dtype=torch.float32)
    assert not hasattr(model.llm, "peft_config")  # merged
    assert_state_equal(model.projector, proj)
    assert_state_equal(model.llm, {k: v for k, v in merged.state_dict().items() if "q_proj" in k or "norm" in k})
    assert len(ranks(model)) == 5


@pytest.mark.parametrize("missing", ["non_lora_trainables.bin", "adapter_model.safetensors", "projector.bin"])
def test_released_lora_missing_file(tiny_dirs, tmp_path, missing):
    folder = tmp_path / "lora"
    write_released_lora(tiny_dirs, folder)
    (folder / missing).unlink()
    if missing == "projector.bin":  # the projector may also live in the trainables: take it out there too
        state = torch.load(folder / "non_lora_trainables.bin")
        torch.save({k: v for k, v in state.items() if "projector" not in k}, folder / "non_lora_trainables.bin")
    with pytest.raises(FileNotFoundError, match=missing):
        load_pe_rank(folder)


# ---------------------------------------------------------------------------------------------- perank's format


def test_perank_full_round_trip(tmp_path, make_tiny_model):
    model = make_tiny_model(seed=4)
    model.save_pretrained(tmp_path / "full")
    assert checkpoint_format(tmp_path / "full") == "perank"
    loaded = load_pe_rank(tmp_path / "full", dtype=torch.float32)
    assert_state_equal(loaded.projector, model.projector.state_dict())
    assert_state_equal(loaded.llm, {k: v for k, v in model.llm.state_dict().items() if "lm_head" not in k})
    assert ranks(loaded) == ranks(model)


def test_perank_lora_round_trip(tmp_path, make_tiny_model):
    from peft import LoraConfig, get_peft_model

    model = make_tiny_model(seed=6)
    model.llm = get_peft_model(model.llm, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(2)
    with torch.no_grad():
        for name, param in model.llm.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.2)
    model.save_pretrained(tmp_path / "lora")
    assert json.loads((tmp_path / "lora" / "perank_config.json").read_text())["llm_weights"] == "lora"
    loaded = load_pe_rank(tmp_path / "lora", dtype=torch.float32)
    assert not hasattr(loaded.llm, "peft_config")
    merged = model.llm.merge_and_unload()
    assert_state_equal(loaded.llm, {k: v for k, v in merged.state_dict().items() if "q_proj" in k})
    model.llm = merged
    assert ranks(loaded) == ranks(model)


def test_perank_missing_file(tiny_checkpoint, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(tiny_checkpoint, folder)
    (folder / "projector.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="projector.safetensors"):
        load_pe_rank(folder)


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="perank_config.json"):
        load_pe_rank(tmp_path)
    with pytest.raises(FileNotFoundError, match="no-such-folder"):
        load_pe_rank(tmp_path / "no-such-folder")


def test_helpers():
    assert base_model_type("embed_mistral") == "mistral"
    assert base_model_type("llama") == "llama"
    assert infer_projector_type({"0.weight": None, "0.bias": None}) == "linear"
    assert infer_projector_type({"0.weight": None, "2.weight": None}) == "mlp2x_gelu"


def test_assemble_cli(tiny_dirs, tmp_path):
    from perank.cli.assemble import main

    out = tmp_path / "assembled"
    assert main(["--llm", str(tiny_dirs.llm), "--encoder", str(tiny_dirs.encoder), "--output", str(out)]) == 0
    config = json.loads((out / "perank_config.json").read_text())
    assert config["llm_weights"] == "base" and config["projector_type"] == "mlp2x_gelu"
    assert not (out / "model.safetensors").exists()
    again = tmp_path / "again"
    main(["--llm", str(tiny_dirs.llm), "--encoder", str(tiny_dirs.encoder), "--output", str(again)])
    a, b = load_pe_rank(out), load_pe_rank(again)
    assert_state_equal(a.projector, b.projector.state_dict())  # seeded
    assert len(ranks(a)) == 5


# ---------------------------------------------------------------------------------------------- assemble = training

SHIPPED = REPO / "checkpoints" / "pe-rank-smollm2-minilm" / "perank_config.json"

#: a value for every model setting, none of them its default (so a setting that is dropped shows)
CHOSEN = {
    "encoder_pooling": "cls",
    "encoder_max_length": 48,
    "projector_type": "linear",
    "query_embedding": True,
    "query_embedding_position": "answer",
    "query_text": False,
    "relevance_feature": "cosine",
}


def assemble_flags(settings: dict) -> list[str]:
    """``--name value`` per setting as a user types them: a switch only away from its default
    (``--query-embedding``, ``--no-query-text``)."""
    from dataclasses import fields

    from perank.families.pe_rank.settings import PERankSettings

    defaults = {f.name: f.default for f in fields(PERankSettings)}
    flags: list[str] = []
    for name, value in settings.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool) and value != defaults[name]:
            flags += [flag] if value else ["--no-" + flag[2:]]
        elif not isinstance(value, bool) and value is not None:
            flags += [flag, str(value)]
    return flags


def test_assemble_honours_every_model_setting(tiny_dirs, tmp_path):
    """Each setting the training runner builds from reaches assemble's saved model, relevance_feature included
    (assemble used to drop it)."""
    from dataclasses import fields

    from perank.cli.assemble import main
    from perank.families.pe_rank.settings import PERankSettings

    settings = fields(PERankSettings)
    assert set(CHOSEN) == {f.name for f in settings} and all(CHOSEN[f.name] != f.default for f in settings)
    out = tmp_path / "assembled"
    argv = ["--llm", str(tiny_dirs.llm), "--encoder", str(tiny_dirs.encoder), "--output", str(out)]
    assert main([*argv, *assemble_flags(CHOSEN)]) == 0
    config = json.loads((out / "perank_config.json").read_text())
    assert {name: config[name] for name in CHOSEN} == CHOSEN
    model = load_pe_rank(out)
    assert model.config.relevance_feature == "cosine" and model.relevance is not None
    assert model.encoder.pooling == "cls" and model.encoder.max_length == 48


def test_assemble_builds_the_shipped_models_shape(tiny_dirs, tmp_path):
    """The shipped checkpoint's settings (query embedding at the answer, relevance feature cosine) as assemble
    options, around the tiny LLM and encoder: the saved config has the shipped one's settings."""
    from perank.cli.assemble import main

    shipped = json.loads(SHIPPED.read_text())
    assert shipped["relevance_feature"] == "cosine"
    settings = {name: shipped[name] for name in CHOSEN}
    out = tmp_path / "shipped-shape"
    argv = ["--llm", str(tiny_dirs.llm), "--encoder", str(tiny_dirs.encoder), "--output", str(out)]
    assert main([*argv, *assemble_flags(settings)]) == 0
    assert {name: json.loads((out / "perank_config.json").read_text())[name] for name in CHOSEN} == settings


def test_assemble_and_the_training_runner_build_the_same_model(tiny_dirs, tmp_path):
    """Same settings and seed, the same untrained model: config, projector and relevance direction."""
    from perank.cli.assemble import main
    from perank.families.pe_rank.training.runner import PERankRunner

    out = tmp_path / "assembled"
    argv = ["--llm", str(tiny_dirs.llm), "--encoder", str(tiny_dirs.encoder), "--output", str(out), "--seed", "5"]
    assert main([*argv, *assemble_flags(CHOSEN)]) == 0
    assembled = load_pe_rank(out)
    train = ["--model_name_or_path", str(tiny_dirs.llm), "--encoder_name", str(tiny_dirs.encoder), "--seed", "5"]
    train += ["--model_type", "rank_lm", "--tune_mlp_adapter", "--data_path", "x", "--output_dir", str(tmp_path / "t")]
    runner = PERankRunner()
    trained = runner.build_model(runner.parse([*train, *assemble_flags(CHOSEN)])).perank
    drop = {"extra", "llm_name", "encoder_name"}  # names: the saved config keeps the given paths either way
    assert {k: v for k, v in trained.config.to_dict().items() if k not in drop} == {
        k: v for k, v in assembled.config.to_dict().items() if k not in drop
    }
    assert_state_equal(trained.projector, assembled.projector.state_dict())
    torch.testing.assert_close(trained.relevance.detach(), assembled.relevance.detach())


def test_a_resumed_checkpoint_restores_every_model_setting():
    """Resuming adopts the checkpoint's settings so its weights fit: every model setting must be among them."""
    from dataclasses import fields

    from perank.families.pe_rank.settings import PERankSettings
    from perank.families.pe_rank.training.runner import RESTORED_SETTINGS

    missing = {f.name for f in fields(PERankSettings)} - {arg for arg, _ in RESTORED_SETTINGS}
    assert not missing, f"add to RESTORED_SETTINGS: {sorted(missing)}"
