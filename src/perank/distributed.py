"""Data-parallel evaluation: the torchrun world, its process group, and which queries each process reranks.

``torchrun --nproc_per_node N src/evaluate.py ...`` (or ``--nnodes``/``--node_rank`` across machines) starts N
copies of the same command with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``
set. :func:`detect_world` reads them; without them the world is one process and nothing here touches
``torch.distributed`` at all, so a plain run behaves exactly as it always did.

Only small metadata travels between processes (settings, decisions, finished results): each rank runs its own
copy of the model, so ``gloo`` is enough on CPU, and ``nccl`` is used when the model runs on CUDA (one GPU per
rank, ``cuda:LOCAL_RANK``). A rank that finishes its shard early waits for the slowest one at the next
collective, which on a CPU can take hours: hence the long :data:`COLLECTIVE_TIMEOUT`. A rank that crashes
ends the job through torchrun, so nothing waits that long for a dead peer.

Queries are sharded by whole batches of the one-process run (batch ``b`` goes to rank ``b % N``): every batch
then holds exactly the queries it holds in a one-process run with the same ``--batch-size``, so padding and
batched kernels see the same inputs and the merged run is byte-identical to the one-process one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from perank.runs import RunIdentity
from perank.types import InputError, Request, Result

T = TypeVar("T")

#: how long a rank waits at a collective for the others (the slowest shard plus rank 0's scoring)
COLLECTIVE_TIMEOUT = timedelta(hours=24)


@dataclass(frozen=True)
class World:
    """This process's place in the job: ``rank`` of ``size`` processes, ``local_rank`` on its machine."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 prints, merges the shards, scores and writes the run."""
        return self.rank == 0

    @property
    def sharded(self) -> bool:
        return self.size > 1


#: the world of a plain (not torchrun) process
SINGLE = World()


def _env_int(environ: Mapping[str, str], key: str, default: int | None = None) -> int:
    text = environ.get(key)
    if text is None or not text.strip():
        if default is None:
            raise InputError(f"{key} is not set; launch with torchrun, which sets RANK, WORLD_SIZE and LOCAL_RANK")
        return default
    try:
        return int(text)
    except ValueError as exc:
        raise InputError(f"environment variable {key}={text!r} is not an integer") from exc


def detect_world(environ: Mapping[str, str] | None = None) -> World:
    """The world torchrun describes in the environment; one process when ``WORLD_SIZE`` is unset (or 1)."""
    environ = os.environ if environ is None else environ
    size = _env_int(environ, "WORLD_SIZE", 1)
    if size < 1:
        raise InputError(f"WORLD_SIZE must be at least 1, got {size}")
    if size == 1:
        return SINGLE
    rank = _env_int(environ, "RANK")
    local_rank = _env_int(environ, "LOCAL_RANK", rank)
    if not 0 <= rank < size:
        raise InputError(f"RANK={rank} is outside the world of WORLD_SIZE={size}")
    return World(rank=rank, size=size, local_rank=local_rank)


def start(world: World, device: str | None) -> str | None:
    """Join the process group of a sharded ``world``; returns the device this rank should use.

    ``device`` is the ``--device`` asked for (``None``: CUDA when there is one, as everywhere else). On CUDA
    each rank takes ``cuda:LOCAL_RANK`` and the group uses ``nccl``; otherwise ``gloo``. A request for CUDA on
    a machine without it fails here, before the group forms, with the same one-line error as one process.
    """
    if device is None and not world.sharded:
        return None  # nothing to check, nothing to join (and no torch import for a reranker without a model)
    from perank.backends.runtime import resolve_device

    target = resolve_device(device)  # raises InputError for --device cuda without CUDA
    if not world.sharded:
        return device
    import torch
    import torch.distributed as dist

    backend = "gloo"
    if target.type == "cuda":
        if world.local_rank >= torch.cuda.device_count():
            raise InputError(
                f"LOCAL_RANK {world.local_rank} has no GPU: this machine has {torch.cuda.device_count()}; "
                "start at most that many processes per node"
            )
        torch.cuda.set_device(world.local_rank)
        backend = "nccl"
        if device is not None and device.strip() == "cuda":
            device = f"cuda:{world.local_rank}"
    dist.init_process_group(backend=backend, rank=world.rank, world_size=world.size, timeout=COLLECTIVE_TIMEOUT)
    return device


def stop(world: World) -> None:
    """Leave the process group (a no-op for one process or when it was never joined)."""
    if not world.sharded:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def all_gather(world: World, obj: T) -> list[T]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not world.sharded:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def gather_to_main(world: World, obj: T) -> list[T] | None:
    """Every rank's ``obj`` in rank order on rank 0; ``None`` on the others."""
    if not world.sharded:
        return [obj]
    import torch.distributed as dist

    out: list[Any] | None = [None] * world.size if world.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out


def broadcast(world: World, obj: T | None) -> T:
    """Rank 0's ``obj`` on every rank (the others pass ``None``)."""
    if not world.sharded:
        return obj  # type: ignore[return-value]
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _on_main(world: World, work: Callable[[], T], share: bool) -> T | None:
    """``work()`` on rank 0; the others get its value (``share``) or ``None``, or its error as an InputError."""
    if world.is_main:
        try:
            value = work()
        except (InputError, OSError) as exc:
            broadcast(world, ("error", str(exc)))
            raise
        except BaseException:
            broadcast(world, ("error", "rank 0 failed; see its traceback"))
            raise
        broadcast(world, ("ok", value if share else None))
        return value
    status, value = broadcast(world, None)
    if status == "error":
        raise InputError(value)
    return value


def decided_by_main(world: World, decide: Callable[[], T]) -> T:
    """``decide()`` run on rank 0 only and its value shared with every rank.

    An :class:`InputError` (or ``OSError``) on rank 0 is raised on every rank with the same message, so the
    whole job stops with one clear line instead of the others waiting for a rank that has gone.
    """
    if not world.sharded:
        return decide()
    return _on_main(world, decide, share=True)  # type: ignore[return-value]


def main_first(world: World, work: Callable[[], T]) -> T:
    """``work()`` on rank 0, then on the others: whatever it creates on a shared disk (retrieval results)
    is made once, by rank 0, before anyone else reads it."""
    if not world.sharded:
        return work()
    value = _on_main(world, work, share=False)
    return value if world.is_main else work()  # type: ignore[return-value]


def shard_batches(items: Sequence[T], batch_size: int, world: World) -> list[T]:
    """This rank's items: the one-process run's batches ``rank``, ``rank + size``, ... concatenated.

    Reranked with the same ``batch_size``, the shard forms exactly those batches again, so every query is
    reranked in the company it has in a one-process run.
    """
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    return [item for batch in batches[world.rank :: world.size] for item in batch]


def merge_shards(requests: Sequence[Request], shards: Sequence[Sequence[Result]]) -> list[Result]:
    """Every rank's results in the order of ``requests``: a query missing or reranked twice is an error."""
    by_qid: dict[str, Result] = {}
    for rank, part in enumerate(shards):
        for result in part:
            if result.query.qid in by_qid:
                raise InputError(f"query {result.query.qid} was reranked twice (again by rank {rank})")
            by_qid[result.query.qid] = result
    missing = [r.query.qid for r in requests if r.query.qid not in by_qid]
    if missing or len(by_qid) != len({r.query.qid for r in requests}):
        raise InputError(f"the ranks' shards do not cover the queries ({len(missing)} missing, e.g. {missing[:1]})")
    return [by_qid[r.query.qid] for r in requests]


def check_ranks_agree(world: World, identity: RunIdentity, batch_size: int) -> None:
    """Every rank of a sharded job must run one run (the same :class:`~perank.runs.RunIdentity`) cut into shards
    alike (the same ``--batch-size``); any difference stops every rank, naming it."""
    everyone = all_gather(world, (identity, batch_size))
    first, first_batch = everyone[0]
    for rank, (theirs, batch) in enumerate(everyone):
        sides = ("rank 0", f"rank {rank}")
        differences = first.differences(theirs, sides)
        if batch != first_batch:
            differences.append(f"batch_size: {first_batch!r} ({sides[0]}) vs {batch!r} ({sides[1]})")
        if differences:
            raise InputError(
                f"rank {rank} of {world.size} has other settings than rank 0 ({'; '.join(differences)}); "
                "every process of the job must run the same command"
            )
