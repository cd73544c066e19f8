"""The small model's recipe tools (:mod:`perank.tools`): mixing rows, the projector warm start, exporting a
checkpoint, ranking windows; and the recipes' shell helpers (``recipes/lib.sh``)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from helpers.paths import REPO
from perank.tools.checkpoints import export, init_projector
from perank.tools.data import mix_rows, rank_windows

RECIPES = REPO / "recipes"


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_mix_caps_windows_per_query_and_is_deterministic(tmp_path: Path) -> None:
    a = write_rows(tmp_path / "a.jsonl", [{"qid": q, "w": i} for q in ("1", "2", "3") for i in range(4)])
    b = write_rows(tmp_path / "b.jsonl", [{"qid": "x", "w": 0}, {"qid": "y", "w": 0}])
    out1, out2 = tmp_path / "m1.jsonl", tmp_path / "m2.jsonl"
    assert mix_rows.main([f"{a}:1", str(b), "-o", str(out1), "--seed", "3"]) == 0
    assert mix_rows.main([f"{a}:1", str(b), "-o", str(out2), "--seed", "3"]) == 0
    rows = [json.loads(line) for line in out1.read_text().splitlines()]
    assert sorted(r["qid"] for r in rows) == ["1", "2", "3", "x", "y"]  # one window per query from a, all of b
    assert out1.read_text() == out2.read_text()


def test_mix_names_a_bad_row(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"qid": "1"}\n{"no_qid": 1}\n', encoding="utf-8")
    with pytest.raises(SystemExit, match=r"bad.jsonl:2"):
        mix_rows.main([str(bad), "-o", str(tmp_path / "out.jsonl")])


def test_init_projector_writes_a_loadable_projector(tmp_path: Path, write_tiny_llm) -> None:

    from perank.backends.embedding_cache import text_key
    from perank.families.pe_rank.projector import build_projector
    from perank.families.pe_rank.training.runner import load_projector_weights

    llm = write_tiny_llm(tmp_path / "llm")
    texts = ["solar panels convert light", "the history of rome", "how to bake bread", "query about bread"]
    rows = [{"query": texts[3], "extra_texts": texts[:3]}]
    data = write_rows(tmp_path / "rows.jsonl", rows)
    gen = torch.Generator().manual_seed(0)
    cache = {text_key(t): torch.randn(12, generator=gen) for t in texts}
    torch.save(cache, tmp_path / "emb.pt")
    out = tmp_path / "s1" / "projector.bin"
    args = ["--data", str(data), "--embeddings", str(tmp_path / "emb.pt"), "--llm", str(llm), "--epochs", "3"]
    assert init_projector.main([*args, "--output", str(out)]) == 0
    state = torch.load(out, weights_only=True)
    assert set(state) == {f"model.projector.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")}
    projector = build_projector("mlp2x_gelu", 12, 64)
    load_projector_weights(projector, str(out))
    assert torch.equal(projector[0].weight, state["model.projector.0.weight"])


def test_init_projector_needs_cached_embeddings(tmp_path: Path) -> None:
    data = write_rows(tmp_path / "rows.jsonl", [{"query": "q", "extra_texts": ["p"]}])
    torch.save({}, tmp_path / "emb.pt")
    with pytest.raises(SystemExit, match="none of the texts"):
        init_projector.main(
            ["--data", str(data), "--embeddings", str(tmp_path / "emb.pt"), "--output", str(tmp_path / "p.bin")]
        )


def test_export_keeps_only_what_loading_needs(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    ck = tmp_path / "checkpoint-7"
    ck.mkdir()
    save_file({"base_model.layer.lora_A.weight": torch.randn(4, 8)}, str(ck / "adapter_model.safetensors"))
    save_file({"0.weight": torch.randn(8, 4)}, str(ck / "projector.safetensors"))
    save_file({"direction": torch.randn(8)}, str(ck / "relevance.safetensors"))
    for name in ("tokenizer.json", "trainer_state.json"):
        (ck / name).write_text("{}", encoding="utf-8")
    (ck / "perank_config.json").write_text(json.dumps({"llm_name": "smollm2"}), encoding="utf-8")
    (ck / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/root/.cache/x"}))
    (ck / "optimizer.pt").write_bytes(b"x" * 100)
    out = tmp_path / "shipped"
    assert export.main([str(ck), str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert "optimizer.pt" not in names
    assert {"adapter_model.safetensors", "projector.safetensors", "relevance.safetensors"} <= names
    # the base is named by its alias, not by the training machine's cache path
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == "smollm2"
    assert load_file(str(out / "adapter_model.safetensors"))["base_model.layer.lora_A.weight"].dtype == torch.bfloat16
    assert load_file(str(out / "projector.safetensors"))["0.weight"].dtype == torch.float32
    (ck / "adapter_model.safetensors").unlink()
    with pytest.raises(SystemExit, match="missing adapter_model.safetensors"):
        export.main([str(ck), str(tmp_path / "again")])


def test_build_rank_data_without_the_query_text(tmp_path: Path) -> None:
    """--no-query-text rows carry the query (its embedding is injected) but never show its words."""
    data = REPO / "data" / "msmarco-passage"
    out = tmp_path / "rows.jsonl"
    args = ["--retrieval-results", str(data / "retrieve_results_dl20.json"), "--max-queries", "2", "--teacher", "qrels"]
    args += ["--qrels", str(data / "qrels.dl20-passage.txt"), "--windows-per-query", "1", "--window-size", "5"]
    args += ["--query-embedding", "--query-embedding-position", "answer", "--no-query-text", "-o", str(out)]
    assert rank_windows.main(args) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2
    for row in rows:
        assert row["query"].strip()
        for key in ("messages_wo_content", "messages_w_content"):
            assert row["query"].strip() not in row[key][0]["content"]
        assert row["messages_wo_content"][1]["content"].startswith("<PLACEHOLDER><RANK>")


def test_last_step_finds_the_highest_checkpoint(tmp_path: Path) -> None:
    for name in ("checkpoint-100", "checkpoint-1200", "checkpoint-300", "other-5000"):
        (tmp_path / name).mkdir()
    (tmp_path / "checkpoint-9000").write_text("a file, not a checkpoint")
    script = f". {RECIPES / 'lib.sh'}; OUT={tmp_path}; last_step; last_step {tmp_path / 'none'}"
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["1200", "0"]


def run_lib(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``script`` run by bash with ``set -euo pipefail`` (as the recipes run) after sourcing ``recipes/lib.sh``."""
    return subprocess.run(
        ["bash", "-c", f"set -euo pipefail; . {RECIPES / 'lib.sh'}; {script}"],
        cwd=cwd,
        capture_output=True,
        text=True,
    )


def test_rank_rows_keeps_given_rows_or_builds_the_mix(tmp_path: Path) -> None:
    """A given ROWS is kept and nothing is built; without one, ``recipes/build_rank_mix.sh`` (a stub here, run from
    the current folder as the recipes run it from the root) builds ``$W/train_mix.jsonl`` with the recipe's WORK
    and PY."""
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "build_rank_mix.sh").write_text('echo "built WORK=$WORK PY=$PY"\n')
    given = run_lib("W=w; PY=py; ROWS=mine.jsonl; rank_rows; echo $ROWS", tmp_path)
    assert given.returncode == 0 and given.stdout.split("\n")[:-1] == ["mine.jsonl"]
    built = run_lib("W=w; PY=py; rank_rows; echo $ROWS", tmp_path)
    assert built.returncode == 0 and built.stdout.split("\n")[:-1] == ["built WORK=w PY=py", "w/train_mix.jsonl"]


def test_copy_last_checkpoint_copies_a_newer_adapter_and_names_what_is_missing(tmp_path: Path) -> None:
    """The last checkpoint's files go to DEST when DEST has no adapter or an older one, not otherwise; a file the
    checkpoint lacks stops the recipe unless ``--present`` skips it."""
    out, dest = tmp_path / "out", tmp_path / "dest"
    for step in (5, 10):
        folder = out / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        (folder / "adapter_model.safetensors").write_text(f"weights {step}")
        (folder / "trainer_state.json").write_text(f"state {step}")
    env = f"OUT={out}; DEST={dest}"
    copy = run_lib(f"{env}; copy_last_checkpoint adapter_model.safetensors trainer_state.json", tmp_path)
    assert copy.returncode == 0 and copy.stderr == f"wrote {dest} from {out}/checkpoint-10\n"
    assert sorted(p.name for p in dest.iterdir()) == ["adapter_model.safetensors", "trainer_state.json"]
    assert (dest / "trainer_state.json").read_text() == "state 10"
    os.utime(dest / "adapter_model.safetensors", (2e9, 2e9))  # DEST's adapter is newer: nothing to copy
    again = run_lib(f"{env}; copy_last_checkpoint adapter_model.safetensors trainer_state.json", tmp_path)
    assert again.returncode == 0 and again.stderr == ""
    os.utime(dest / "adapter_model.safetensors", (1e9, 1e9))  # older than the checkpoint's again
    strict = run_lib(f"{env}; copy_last_checkpoint adapter_model.safetensors gone.json; echo after", tmp_path)
    assert strict.returncode != 0 and "gone.json" in strict.stderr and "after" not in strict.stdout
    present = run_lib(
        f"{env}; copy_last_checkpoint --present gone.json adapter_model.safetensors; echo after", tmp_path
    )
    assert present.returncode == 0 and present.stdout == "after\n" and not (dest / "gone.json").exists()
    assert (dest / "adapter_model.safetensors").read_text() == "weights 10"
