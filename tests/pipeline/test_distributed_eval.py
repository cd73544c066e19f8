"""Data-parallel evaluation under torchrun: the merged run is the one-process run, byte for byte, even after a
kill; progress of another world size is refused; ranks with different settings stop; CUDA asked for on a
machine without it is one clear line.

The end-to-end tests launch ``python -m torch.distributed.run --standalone --nproc_per_node 2`` (gloo on CPU)
with the dense reranker over the tiny random encoder of ``conftest.py``, on 8 DL19 queries.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers.paths import REPO
from perank import distributed
from perank.distributed import SINGLE, World, check_ranks_agree, detect_world, merge_shards, shard_batches
from perank.runs import RunIdentity, rank_progress_path, unresumable_progress
from perank.types import InputError, Query, Request, Result

DATA = REPO / "data" / "msmarco-passage"
RUN = "eval_dl19_8q_r_top100.txt"


def env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def torchrun(nproc: int, script: Path | None = None) -> list[str]:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)]
    return launcher + [str(script or REPO / "src" / "evaluate.py")]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, write_tiny_encoder) -> tuple[Path, Path]:
    """8 DL19 queries with 40 candidates each, and the tiny encoder."""
    from perank.io import read_retrieval_results, write_retrieval_results

    root = tmp_path_factory.mktemp("dist")
    requests = read_retrieval_results(DATA / "retrieve_results_dl19.json")[:8]
    for r in requests:
        del r.candidates[40:]
    write_retrieval_results(root / "dl19_8q.jsonl", requests)
    return root / "dl19_8q.jsonl", write_tiny_encoder(root / "encoder")


def args(setup: tuple[Path, Path], out: Path) -> list[str]:
    candidates, encoder = setup
    return (
        ["--retrieval-results", str(candidates), "--qrels", str(DATA / "qrels.dl19-passage.txt")]
        + ["--reranker", "dense", "--model-path", str(encoder), "--batch-size", "2", "--run-name", "r"]
        + ["--output-dir", str(out), "--no-progress"]
    )


def run(cmd: list[str], ok: bool = True) -> subprocess.CompletedProcess[str]:
    """Run to the end; ``ok``: it must succeed, else it must fail."""
    proc = subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
    assert (proc.returncode == 0) == ok, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def reference(setup: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The one-process run."""
    out = tmp_path_factory.mktemp("one")
    run([sys.executable, str(REPO / "src" / "evaluate.py"), *args(setup, out)])
    return (out / RUN).read_bytes()


def worker_pids(parent: int) -> list[int]:
    """The processes torchrun started (each in its own session, so killing torchrun's group misses them)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent:
            pids.append(int(stat.parent.name))
    return sorted(pids)


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.endswith(".partial.jsonl") or p.name.endswith(".tmp"))


# ---------------------------------------------------------------------------------------------------------
# units: the world, the shards
# ---------------------------------------------------------------------------------------------------------


def test_world_comes_from_torchrun_variables() -> None:
    assert detect_world({}) == SINGLE and not SINGLE.sharded
    assert detect_world({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"}) == World(3, 4, 1)
    with pytest.raises(InputError, match="RANK=4 is outside"):
        detect_world({"WORLD_SIZE": "4", "RANK": "4"})
    with pytest.raises(InputError, match="WORLD_SIZE='x'"):
        detect_world({"WORLD_SIZE": "x"})


def _request(qid: str) -> Request:
    return Request(query=Query(qid=qid, text=qid), candidates=[])


def test_shards_are_whole_batches_and_merge_back_in_order() -> None:
    requests = [_request(str(i)) for i in range(7)]
    shards = [shard_batches(requests, 2, World(rank, 3)) for rank in range(3)]
    assert [[r.query.qid for r in s] for s in shards] == [["0", "1", "6"], ["2", "3"], ["4", "5"]]
    results = [[Result(query=r.query, candidates=[]) for r in s] for s in shards]
    assert [r.query.qid for r in merge_shards(requests, results)] == [str(i) for i in range(7)]
    with pytest.raises(InputError, match="reranked twice"):
        merge_shards(requests, [*results, results[0]])
    with pytest.raises(InputError, match="1 missing"):
        merge_shards(requests, results[:1] + [results[1][:1]] + results[2:])


def test_progress_of_another_world_size_is_named(tmp_path: Path) -> None:
    run_path = tmp_path / RUN
    rank_progress_path(run_path, 1, 3).write_text('{"_header": {"shard": {"batch_size": 2}}}\n')
    assert unresumable_progress(run_path, 3, 2) == {}
    (reason,) = unresumable_progress(run_path, 2, 2).values()
    assert "3 processes" in reason and "this job has 2" in reason
    (reason,) = unresumable_progress(run_path, 3, 4).values()
    assert "--batch-size 2" in reason and "--batch-size 4" in reason


# ---------------------------------------------------------------------------------------------------------
# end to end under torchrun
# ---------------------------------------------------------------------------------------------------------


def test_ranks_must_agree_on_the_run_and_its_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rank 1's identity and ``--batch-size`` gathered beside rank 0's (the collective faked): one run and the same
    batches pass; anything else stops the job, naming what differs."""

    def identity(topk: int, volatile_batch: int = 8) -> RunIdentity:
        settings = {"reranker": "dense", "model": "m", "batch_size": volatile_batch}
        base = RunIdentity("dense-m", settings, frozenset({"batch_size"}))
        return base.on(dataset="dl19", retriever="bm25", candidates="bm25", topk=topk)

    world = World(rank=0, size=2)
    gathered: list[tuple[RunIdentity, int]] = []
    monkeypatch.setattr(distributed, "all_gather", lambda world, obj: [obj, *gathered])
    gathered[:] = [(identity(100, volatile_batch=64), 4)]  # the reranker's own batch size is volatile: one run
    check_ranks_agree(world, identity(100), 4)
    gathered[:] = [(identity(5), 2)]
    with pytest.raises(InputError) as err:
        check_ranks_agree(world, identity(100), 4)
    assert str(err.value) == (
        "rank 1 of 2 has other settings than rank 0 (topk: 100 (rank 0) vs 5 (rank 1); batch_size: 4 (rank 0) vs 2 "
        "(rank 1)); every process of the job must run the same command"
    )


@pytest.mark.slow
def test_two_processes_write_the_one_process_run(setup, reference: bytes, tmp_path: Path) -> None:
    proc = run([*torchrun(2), *args(setup, tmp_path)])
    assert (tmp_path / RUN).read_bytes() == reference
    assert leftovers(tmp_path) == []
    printed = [line for line in proc.stdout.splitlines() if line.startswith("ndcg_cut_10\t")]
    assert len(printed) == 1  # only rank 0 prints the metrics


@pytest.mark.slow
def test_killed_job_resumes_to_the_same_run_and_refuses_another_world_size(
    setup, reference: bytes, tmp_path: Path
) -> None:
    job = subprocess.Popen(
        [*torchrun(2), *args(setup, tmp_path)],
        cwd=REPO,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    first = [rank_progress_path(tmp_path / RUN, rank, 2) for rank in range(2)]
    deadline = time.monotonic() + 200
    while job.poll() is None and time.monotonic() < deadline:  # kill once some rank has saved its first batch
        if any(p.exists() and p.read_text().count("\n") >= 2 for p in first):
            break
        time.sleep(0.01)
    workers = worker_pids(job.pid)
    assert workers, "the job finished before it could be killed"
    os.kill(workers[0], signal.SIGKILL)  # one rank dies; torchrun then ends the other and fails
    assert job.wait(timeout=120) != 0
    assert not (tmp_path / RUN).exists()

    one = run([sys.executable, str(REPO / "src" / "evaluate.py"), *args(setup, tmp_path)], ok=False)
    assert one.returncode == 2
    assert "2 processes" in one.stderr and "this job has 1" in one.stderr and "--overwrite" in one.stderr
    assert not (tmp_path / RUN).exists()

    resumed = run([*torchrun(2), *args(setup, tmp_path)])
    assert "resuming" in resumed.stderr
    assert (tmp_path / RUN).read_bytes() == reference  # no query lost or doubled, same bytes
    assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_ranks_with_different_settings_stop(setup, tmp_path: Path) -> None:
    script = tmp_path / "launch.py"
    script.write_text(
        "import os, sys\n"
        "from perank.cli.evaluate import main\n"
        "extra = ['--topk', '5'] if os.environ['RANK'] == '1' else []\n"
        "sys.exit(main(sys.argv[1:] + extra))\n"
    )
    proc = run([*torchrun(2, script), *args(setup, tmp_path / "out")], ok=False)
    assert "error: rank 1 of 2 has other settings than rank 0" in proc.stderr
    assert "topk: 100 (rank 0) vs 5 (rank 1)" in proc.stderr
    assert not any((tmp_path / "out").iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_one_clear_line(tmp_path: Path) -> None:
    cmd = [sys.executable, str(REPO / "src" / "evaluate.py"), "--datasets", "dl19", "--reranker", "identity"]
    proc = subprocess.run(
        [*cmd, "--device", "cuda", "--output-dir", str(tmp_path)], cwd=REPO, env=env(), capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: --device cuda: CUDA is not available on this machine; use --device cpu"
    )
    assert not any(tmp_path.iterdir())
