"""Time and peak memory of one ``rank`` call with a long query (and passage) against a normal one.

    python benchmarks/run.py long_inputs                      # default PE-Rank, a 200,000-character query
    python benchmarks/run.py long_inputs --query-chars 1000000 --passage-chars 1000000

The reranker is loaded once, one normal query is ranked as a warm-up (lazy allocations happen once), then a
normal query and the long one are each ranked while a thread samples the process's resident memory every 2 ms:
the numbers compare what each call itself needed, not the model's load. Prints one JSON line: ``normal`` and
``long`` peak RSS (bytes) and seconds, and the long call's ``Result.stats`` (``truncated_queries``, tokens).
Each text is a repeated sentence cut to the asked length, like a pasted document.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from typing import Any

QUERY = "how long do fleas live "
DOCS = ["The life cycle of a flea lasts 2-3 months.", "Paris is the capital of France."]


def peak_during(call: Callable[[], Any]) -> tuple[Any, int, float]:
    """``(call's result, the highest RSS sampled while it ran, its seconds)``."""
    import psutil

    process, top, done = psutil.Process(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            top[0] = max(top[0], process.memory_info().rss)
            time.sleep(0.002)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start = time.perf_counter()
    try:
        result = call()
    finally:
        done.set()
        thread.join()
    return result, top[0], time.perf_counter() - start


def repeated(text: str, chars: int) -> str:
    return (text * (chars // len(text) + 1))[:chars]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run.py long_inputs", description=__doc__.splitlines()[0])
    parser.add_argument("--reranker", default="pe-rank", help="registry name (default: the shipped PE-Rank)")
    parser.add_argument("--query-chars", type=int, default=200_000, help="length of the long query")
    parser.add_argument("--passage-chars", type=int, default=0, help="length of a long second passage (0: normal)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)

    import torch

    from perank import Reranker

    torch.set_num_threads(args.threads)
    ranker = Reranker(args.reranker)
    ranker.rank(QUERY.strip(), DOCS)  # warm-up
    _, normal_rss, normal_s = peak_during(lambda: ranker.rank(QUERY.strip(), DOCS))
    docs = [DOCS[0], repeated(DOCS[1] + " ", args.passage_chars)] if args.passage_chars else DOCS
    result, long_rss, long_s = peak_during(lambda: ranker.rank(repeated(QUERY, args.query_chars), docs))
    print(
        json.dumps(
            {
                "reranker": args.reranker,
                "query_chars": args.query_chars,
                "passage_chars": args.passage_chars,
                "normal": normal_rss,
                "normal_s": round(normal_s, 3),
                "long": long_rss,
                "long_s": round(long_s, 3),
                "stats": result.stats,
            }
        )
    )
    return 0
