"""The persistent passage-embedding cache: round trip, key separation, concurrency, equality with no cache."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import pickle

import numpy as np
import pytest

from perank.backends.embedding_cache import EmbeddingCache, encode_cached, encoder_key, text_hash

DIM = 16


def _vector(text: str) -> np.ndarray:
    """A deterministic vector per text, so concurrent writers always write the same value."""
    seed = int.from_bytes(hashlib.sha1(text.encode()).digest()[:4], "little")
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


def _writer(path: str, worker: int, texts: list[str], rounds: int) -> None:
    cache = EmbeddingCache(path)
    rng = np.random.default_rng(worker)
    for _ in range(rounds):
        batch = [texts[i] for i in rng.choice(len(texts), size=50, replace=False)]
        cache.put_many("enc|a", batch, np.stack([_vector(t) for t in batch]))
        got = cache.get_many("enc|a", batch)
        for t, v in zip(batch, got):
            assert v is not None and np.array_equal(v, _vector(t))
    cache.close()


class FakeEncoder:
    """Counts what it encodes; same attributes as PassageEncoder that the cache key reads."""

    def __init__(self, pooling: str = "mean", max_length: int = 128) -> None:
        self.name_or_path = "fake-encoder"
        self.pooling = pooling
        self.max_length = max_length
        self.dim = DIM
        self.encoded: list[str] = []

    def encode(self, texts: list[str], batch_size: int = 64):
        import torch

        self.encoded.extend(texts)
        scale = 1.0 if self.pooling == "mean" else 2.0
        return torch.from_numpy(np.stack([_vector(t) * scale for t in texts])) if texts else torch.zeros(0, DIM)


def test_round_trip(tmp_path):
    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    texts = ["a passage", "another one", "ünïcödé ✓", ""]
    vecs = np.stack([_vector(t) for t in texts])
    assert cache.get_many("k", texts) == [None] * 4
    cache.put_many("k", texts, vecs)
    got = cache.get_many("k", [*texts, "not stored", "a passage"])
    for v, ref in zip(got[:4], vecs):
        assert v.dtype == np.float32 and np.array_equal(v, ref)
    assert got[4] is None and np.array_equal(got[5], vecs[0])
    assert cache.count() == 4 and cache.count("k") == 4
    cache.close()
    # persistent across instances (a new run)
    again = EmbeddingCache(tmp_path / "emb.sqlite")
    assert np.array_equal(again.get_many("k", ["another one"])[0], vecs[1])
    # existing keys are kept (INSERT OR IGNORE), not overwritten
    again.put_many("k", ["a passage"], np.zeros((1, DIM), dtype=np.float32))
    assert np.array_equal(again.get_many("k", ["a passage"])[0], vecs[0])
    # picklable (for worker processes); the copy opens its own connection
    clone = pickle.loads(pickle.dumps(again))
    assert np.array_equal(clone.get_many("k", [""])[0], vecs[3])


def test_many_keys_beyond_sql_parameter_limit(tmp_path):
    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    texts = [f"passage {i}" for i in range(2500)]
    cache.put_many("k", texts, np.stack([_vector(t) for t in texts]))
    got = cache.get_many("k", texts)
    assert all(np.array_equal(v, _vector(t)) for t, v in zip(texts, got))
    assert cache.hits == 2500 and cache.misses == 0


def test_prefixes_do_not_collide(tmp_path):
    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    cache.put_many("enc|pooling=mean", ["x"], np.ones((1, DIM), dtype=np.float32))
    cache.put_many("enc|pooling=cls", ["x"], np.full((1, DIM), 2.0, dtype=np.float32))
    assert cache.get_many("enc|pooling=mean", ["x"])[0][0] == 1.0
    assert cache.get_many("enc|pooling=cls", ["x"])[0][0] == 2.0
    assert cache.get_many("enc|pooling=last_token", ["x"]) == [None]
    assert text_hash("x") != text_hash("x ")


def test_encoder_key_covers_settings():
    keys = {
        encoder_key(FakeEncoder("mean", 128)),
        encoder_key(FakeEncoder("cls", 128)),
        encoder_key(FakeEncoder("mean", 256)),
    }
    assert len(keys) == 3


def test_encode_cached_only_encodes_misses(tmp_path):
    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    enc = FakeEncoder()
    first = encode_cached(enc, ["a", "b", "a"], cache, batch_size=2)
    assert enc.encoded == ["a", "b"]  # deduplicated
    second = encode_cached(enc, ["b", "c", "a"], cache)
    assert enc.encoded == ["a", "b", "c"]
    assert np.array_equal(second[0].numpy(), first[1].numpy())
    assert np.array_equal(second[2].numpy(), first[0].numpy())
    # another pooling setting misses and encodes again, with its own values
    other = FakeEncoder(pooling="cls")
    third = encode_cached(other, ["a"], cache)
    assert other.encoded == ["a"] and np.allclose(third[0].numpy(), 2 * first[0].numpy())
    assert encode_cached(enc, [], cache).shape == (0, DIM)
    assert encode_cached(enc, ["z"], None).shape == (1, DIM)


def test_concurrent_writers_same_keys(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    texts = [f"shared passage {i}" for i in range(300)]
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, texts, 30)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    cache = EmbeddingCache(path)
    got = cache.get_many("enc|a", texts)
    stored = [t for t, v in zip(texts, got) if v is not None]
    assert stored, "writers stored nothing"
    assert all(np.array_equal(v, _vector(t)) for t, v in zip(texts, got) if v is not None)
    assert cache.count("enc|a") == len(stored)
    assert cache._connect().execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.fixture(scope="module")
def minilm():
    torch = pytest.importorskip("torch")
    from perank.backends.encoder import PassageEncoder
    from perank.backends.resolve import packaged_minilm

    try:
        packaged_minilm()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    torch.manual_seed(0)
    return PassageEncoder("all-minilm-l6-v2", pooling="mean", max_length=64)


def test_real_encoder_cached_equals_uncached(tmp_path, minilm):
    import torch

    texts = ["how long is the life cycle of a flea", "fleas live up to a year", "unrelated text [3]", "x" * 300]
    plain = minilm.encode(texts, batch_size=2)
    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    cold = minilm.encode(texts, batch_size=2, cache=cache)
    assert cache.misses == 4 and cache.hits == 0
    minilm.cache = cache
    try:
        warm = minilm.encode(list(reversed(texts)), batch_size=3)
    finally:
        minilm.cache = None
    assert cache.hits == 4
    torch.testing.assert_close(cold, plain)
    torch.testing.assert_close(warm, plain.flip(0))
    short = PassageEncoderWithLength(minilm, 8)
    assert encoder_key(short) != encoder_key(minilm)


def PassageEncoderWithLength(encoder, max_length):  # noqa: N802  (reads like a constructor)
    """The same encoder object under another max_length, as the cache key sees it."""
    import copy

    other = copy.copy(encoder)
    other.max_length = max_length
    return other


def test_pe_rank_reranker_embedding_cache_option(tmp_path):
    """``build_reranker("pe-rank", embedding_cache=PATH)`` routes the encoder through the cache."""
    pytest.importorskip("transformers")
    import torch

    from perank.ranking.registry import build_reranker
    from perank.types import Candidate, Query, Request
    from perank_bench.rerank_latency.synthetic import build_synthetic

    model = build_synthetic("tiny", "cpu", torch.float32, None, 64)
    path = tmp_path / "emb.sqlite"
    reranker = build_reranker("pe-rank", model=model, embedding_cache=str(path), batch_size=1)
    request = Request(Query("q1", "fleas"), [Candidate(f"d{i}", f"passage number {i}") for i in range(5)])
    first = reranker.rerank([request])[0]
    cache = model.encoder.cache
    assert isinstance(cache, EmbeddingCache) and cache.count() == 5 and cache.misses == 5
    second = reranker.rerank([request])[0]
    assert cache.hits == 5
    assert [c.docid for c in first.candidates] == [c.docid for c in second.candidates]
