"""The benchmarks (``benchmarks/run.py``, the package ``perank_bench``): the latency benchmark end to end on a
random tiny model (the same code path as the H100 Mistral-7B run), the prepared GPU check's dry run, and the
every-family benchmark."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.paths import PEERS, REPO
from perank.ranking.registry import available_rerankers
from perank_bench import cli as bench_cli
from perank_bench.families import cli as families_cli
from perank_bench.families import configs as families_configs
from perank_bench.measures import percentile
from perank_bench.rerank_latency.configs import select_configs
from perank_bench.rerank_latency.report import markdown, ratios

BENCHMARKS = REPO / "benchmarks"
SCRIPT = BENCHMARKS / "run.py"

ENTRY_FIELDS = {
    "reranker",
    "config",
    "median_latency_s",
    "p90_latency_s",
    "queries_per_s",
    "tokens_processed",
    "tokens_generated",
    "peak_rss_mb",
    "ndcg_cut_10",
}
CONFIG_FIELDS = {"batch_size", "decode_mode", "device", "dtype", "n_queries"}


def _run(tmp_path: Path, names: list[str], *extra: str) -> list[dict]:
    cmd = [
        sys.executable,
        str(SCRIPT),
        "rerank_latency",
        "--synthetic",
        "tiny",
        "--queries",
        "2",
        "--text-queries",
        "2",
        "--topk",
        "20",
        "--batch-size",
        "2",
        "--threads",
        "1",
        "--only",
        ",".join(names),
        "--output-dir",
        str(tmp_path),
        "--tag",
        "smoke",
        "--timeout",
        "120",
        *extra,
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    # from another folder: the script and the workers it starts must not depend on the working directory
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((tmp_path / "rerank_latency_smoke.json").read_text())


@pytest.mark.slow
def test_synthetic_tiny_subprocess(tmp_path):
    """The real mode: each configuration in a fresh subprocess (one configuration here, to stay fast)."""
    (entry,) = _run(tmp_path, ["pe-rank-batched"])
    assert set(entry) >= ENTRY_FIELDS
    assert entry["config"]["batch_size"] == 2 and entry["config"]["n_queries"] == 2
    assert entry["peak_rss_mb"] > 0 and entry["queries_per_s"] > 0


@pytest.mark.slow
def test_synthetic_tiny_benchmark(tmp_path):
    """Every configuration on 2 queries, in one process (the synthetic model is built once)."""
    names = ["pe-rank", "pe-rank-whole-prompts", "pe-rank-single-pass", "pe-rank-batched"]
    names += ["listwise-text-embedding", "listwise-text"]
    entries = _run(tmp_path, names, "--in-process")
    assert [e["name"] for e in entries] == names
    for e in entries:
        assert set(e) >= ENTRY_FIELDS, set(ENTRY_FIELDS) - set(e)
        assert set(e["config"]) >= CONFIG_FIELDS
        assert e["config"]["n_queries"] == 2 and e["config"]["device"] == "cpu"
        assert e["median_latency_s"] > 0 and e["p90_latency_s"] >= e["median_latency_s"]
        assert e["queries_per_s"] > 0 and e["peak_rss_mb"] > 0
        assert e["tokens_processed"] > 0 and e["tokens_generated"] > 0
        assert 0.0 <= e["ndcg_cut_10"] <= 1.0
    by = {e["name"]: e for e in entries}
    assert by["pe-rank-batched"]["config"]["batch_size"] == 2
    assert by["pe-rank-single-pass"]["config"]["decode_mode"] == "single-pass"
    # one window per query: its prompt is processed whole either way (the prefix is paid by the first window)
    assert by["pe-rank-whole-prompts"]["tokens_processed"] == by["pe-rank"]["tokens_processed"]
    # one passage token per passage: the text prompt processes many more tokens than the embedding prompt
    assert by["listwise-text-embedding"]["tokens_processed"] > 2 * by["pe-rank"]["tokens_processed"]
    assert by["pe-rank"]["tokens_generated"] == 20  # one window of 20 passages, one step each
    assert by["pe-rank-single-pass"]["tokens_generated"] == 1
    assert "breakdown_per_query_s" in by["pe-rank"]
    md = (tmp_path / "rerank_latency_smoke.md").read_text()
    assert "| pe-rank |" in md and "ratio" in md
    assert (tmp_path / "rerank_latency_smoke.png").stat().st_size > 0


def test_help_from_any_folder(tmp_path):
    """The launcher finds its package and parses a benchmark's options wherever it is started from."""
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "rerank_latency", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "--synthetic {mistral-7b,tiny}" in proc.stdout and "--embedding-cache" in proc.stdout


@pytest.mark.parametrize("name", ["families", "long_inputs", "compare_runs", "arguana_bm25"])
def test_every_benchmark_parses_its_options(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench_cli.main([name, "--help"])
    assert exit_info.value.code == 0 and "--" in capsys.readouterr().out


def test_the_launcher_lists_the_benchmarks_and_refuses_an_unknown_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_cli.main([]) == 2 and "rerank_latency" in capsys.readouterr().out
    assert bench_cli.main(["nope"]) == 2 and "unknown benchmark 'nope'" in capsys.readouterr().err


def test_unknown_configuration_is_refused():
    """``--only``/``--skip`` are checked before any model loads; the cached configuration needs its cache."""
    select = select_configs
    assert select(None, "", None)[-1] == "listwise-text"
    assert select(None, "listwise-text", "/tmp/cache.sqlite")[-1] == "pe-rank-cached"
    with pytest.raises(SystemExit, match="unknown configuration"):
        select("pe-rank,nope", "", None)
    with pytest.raises(SystemExit, match="needs --embedding-cache"):
        select("pe-rank-cached", "", None)


def test_markdown_reproduces_the_cpu_record():
    """The committed CPU record's table is what ``report.markdown`` writes from its JSON (``--replot``)."""
    results = BENCHMARKS / "results"
    entries = json.loads((results / "rerank_latency_cpu.json").read_text())
    assert (results / "rerank_latency_cpu.md").read_text().startswith(markdown(entries, entries[0]["run"]))


def test_percentile_and_ratios():
    assert percentile([1.0], 90) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile([0.0, 10.0], 90) == pytest.approx(9.0)
    entries = [
        {
            "name": "pe-rank",
            "reranker": "pe-rank",
            "median_latency_s": 1.0,
            "queries_per_s": 1.0,
            "tokens_processed": 3000,
        },
        {"name": "pe-rank-batched", "reranker": "pe-rank", "median_latency_s": 4.0, "queries_per_s": 2.5},
        {"name": "listwise-text", "reranker": "listwise-text", "median_latency_s": 6.0, "queries_per_s": 0.2},
    ]
    got = {d: v for d, v, _ in ratios(entries)}
    assert got["listwise-text / pe-rank median latency (batch 1)"] == pytest.approx(6.0)
    assert got["pe-rank batched / batch-1 queries per second"] == pytest.approx(2.5)
    assert got["pe-rank greedy / single-pass median latency"] is None


# ---------------------------------------------------------------- the prepared GPU check, dry run on CPU

GPU_CHECK = REPO / "tests" / "gpu" / "gpu_check.sh"


def test_gpu_check_dry_run(tmp_path):
    """``gpu_check.sh --dry-run`` runs the device's latency step on CPU with tiny shapes (the env and test steps
    are left out here to stay fast; the full dry run is under 2 minutes): every engine configuration is timed,
    the eager twins record their engine, and the summary says what ran."""
    out = tmp_path / "out"
    cmd = ["bash", str(GPU_CHECK), "--dry-run", "--steps", "latency", "--queries", "1", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = (out / "summary.md").read_text()
    assert "| env | skipped |" in summary and "| tests | skipped |" in summary and "| latency | ok |" in summary
    entries = json.loads((out / "rerank_latency_gpu_dry.json").read_text())
    by = {e["name"]: e for e in entries}
    assert set(by) == {
        "pe-rank",
        "pe-rank-eager",
        "pe-rank-single-pass",
        "pe-rank-single-pass-batched",
        "pe-rank-batched",
        "pe-rank-batched-eager",
    }
    assert by["pe-rank-eager"]["config"]["decode_engine"] == "eager"
    assert by["pe-rank"]["config"]["decode_engine"] == "eager"  # auto is eager on CPU (graph on CUDA)
    assert by["pe-rank"]["ndcg_cut_10"] == by["pe-rank-eager"]["ndcg_cut_10"]  # the engine never changes rankings
    assert "pe-rank eager / auto-engine median latency (batch 1)" in summary


def test_gpu_check_rejects_unknown_options():
    proc = subprocess.run(["bash", str(GPU_CHECK), "--fast"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "unknown option --fast" in proc.stderr


# ---------------------------------------------------------------- every family, one benchmark


def test_every_registered_family_has_a_configuration():
    from perank.ranking.registry import get_reranker_class

    configs = families_configs.FAMILY_CONFIGS
    canonical = {get_reranker_class(name).name for name in available_rerankers()}
    assert canonical <= {c.reranker for c in configs.values()}, canonical - {c.reranker for c in configs.values()}


def test_families_options_and_selection():
    configs = families_configs
    assert configs.select_configs("identity,dense", "dense") == ["identity"]
    with pytest.raises(SystemExit, match="unknown configuration"):
        configs.select_configs("identity,nope", "")
    sets = configs.parse_sets(["pe-rank.window_size=10", "dense.model_path=/m", "*.batch_size=4"])
    assert sets == {"pe-rank": {"window_size": 10}, "dense": {"model_path": "/m"}, "*": {"batch_size": 4}}
    with pytest.raises(SystemExit, match="NAME.key=value"):
        configs.parse_sets(["nope.x=1"])


@pytest.mark.slow
def test_families_benchmark_on_one_query(tmp_path, tiny_dirs, tiny_checkpoint, monkeypatch):
    """Several families on 1 query with the tiny fixtures, in process, plus one that fails (a missing model)
    and one whose registry name is absent: the record has a row for each that ran and a reason for the rest."""
    cli, configs = families_cli, families_configs
    monkeypatch.setitem(configs.FAMILY_CONFIGS, "ghost", configs.FamilyConfig("no-such-family", "not registered"))
    sets = [
        f"dense.model_path={tiny_dirs.encoder}",
        f"cross-encoder.model_path={PEERS / 'bge-reranker-tiny'}",
        f"pe-rank.model_path={tiny_checkpoint}",
        f"llm-pointwise.model_path={tiny_dirs.llm}",
        f"colbert.model_path={tmp_path / 'missing'}",
    ]
    names = ["identity", "dense", "cross-encoder", "pe-rank", "llm-pointwise", "colbert", "ghost"]
    argv = ["--queries", "1", "--topk", "8", "--in-process", "--only", ",".join(names), "--output-dir", str(tmp_path)]
    argv += ["--tag", "smoke", "--threads", "1", *(x for s in sets for x in ("--set", s))]
    import torch

    threads = torch.get_num_threads()
    cli.main(argv)
    # in process, the benchmark must leave torch as it found it (a global no-grad broke later training tests)
    assert torch.is_grad_enabled() and torch.get_num_threads() == threads
    record = json.loads((tmp_path / "families_smoke.json").read_text())
    ran = {e["name"]: e for e in record["entries"]}
    assert list(ran) == ["identity", "dense", "cross-encoder", "pe-rank", "llm-pointwise"]
    for e in ran.values():
        assert e["config"]["n_queries"] == 1 and e["median_latency_s"] >= 0 and 0.0 <= e["ndcg_cut_10"] <= 1.0
    assert ran["pe-rank"]["tokens_generated"] == 8  # one window of the 8 candidates, one step each
    assert ran["identity"]["reranker"] == "identity" and "device" not in ran["identity"]["config"]["options"]
    assert record["not_run"]["ghost"].startswith("skipped: no reranker 'no-such-family'")
    assert record["not_run"]["colbert"].startswith("failed:")
    md = (tmp_path / "families_smoke.md").read_text()
    assert "| pe-rank | pe-rank |" in md and "- `ghost`: skipped" in md
    assert (tmp_path / "families_smoke.png").stat().st_size > 0
