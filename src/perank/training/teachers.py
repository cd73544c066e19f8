"""Teacher scores that training-data builders share (``perank build-rank-data``, ``perank build-pair-data``).

The dense teacher is the packaged MiniLM cosine (the ``dense`` reranker's score): every builder must compute
it the same way and share one embedding file, so a second teacher, and PE-Rank training
(``--embedding_cache``), never re-encode a text.
"""

from __future__ import annotations

import sys
from pathlib import Path

from perank.backends.embedding_cache import text_key
from perank.types import Request


def dense_scores(
    requests: list[Request], encoder_name: str, max_length: int, cache_path: Path | None = None
) -> dict[str, dict[str, float]]:
    """Cosine of query and passage embeddings, per query and docid (the dense reranker's scores).

    With ``cache_path`` the frozen-encoder embeddings of every query and passage are read from / added to
    that file, so a second teacher, and training (``--embedding_cache``), never re-encode them.
    """
    import torch

    from perank.backends.encoder import PassageEncoder

    cache: dict[str, torch.Tensor] = {}
    if cache_path and cache_path.exists():
        cache = torch.load(cache_path, weights_only=True)
    texts = list(dict.fromkeys([c.text for r in requests for c in r.candidates] + [r.query.text for r in requests]))
    todo = [t for t in texts if text_key(t) not in cache]
    if todo:
        print(f"dense teacher: encoding {len(todo)} texts ({len(texts) - len(todo)} cached)", file=sys.stderr)
        enc = PassageEncoder(encoder_name, max_length=max_length)
        for t, v in zip(todo, enc.encode(todo)):
            cache[text_key(t)] = v
        if cache_path:
            torch.save(cache, cache_path)
    return {
        r.query.qid: {c.docid: float(cache[text_key(r.query.text)] @ cache[text_key(c.text)]) for c in r.candidates}
        for r in requests
    }
