"""ColBERT late interaction: parity with FlagEmbedding's bge-m3 on the tiny fixture, masking, loading, the
embedding cache, bad input, and the training runner on a tiny encoder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.paths import PEERS
from perank.backends.embedding_cache import EmbeddingCache
from perank.families.colbert import reranker as colbert_reranker
from perank.families.colbert.loss import ColbertTrainingModel, group_scores, m3_kd_loss
from perank.families.colbert.model import load_colbert
from perank.families.colbert.scoring import maxsim, pad_matrices, score_query
from perank.ranking.registry import build_reranker
from perank.training.runner import get_runner
from perank.types import InputError

M3 = PEERS / "bge-m3-tiny"
GOLDEN = json.loads((PEERS / "golden_colbert.json").read_text(encoding="utf-8"))
PAIRS = [tuple(p) for p in GOLDEN["pairs"]]
TOL = 1e-4


def colbert(**options):
    return build_reranker("colbert", **{"model_path": str(M3), "device": "cpu", **options})


@pytest.fixture(scope="module")
def m3():
    return colbert()


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory, write_tiny_encoder) -> Path:
    """A 2-layer random BERT with MiniLM's tokenizer: a plain encoder (no colbert_linear.pt)."""
    return write_tiny_encoder(tmp_path_factory.mktemp("colbert") / "encoder")


# ---------------------------------------------------------------- parity with FlagEmbedding (bge-m3)


def test_encode_path_matches_the_peer(m3) -> None:
    """Per-text vectors (tokens - 1 rows, CLS dropped) and the README's colbert_score, within 1e-4."""
    model, enc = m3.model, GOLDEN["encode"]
    q = model.encode([p[0] for p in PAIRS], 512)
    p = model.encode([p[1] for p in PAIRS], 512)
    worst = 0.0
    for i in range(len(PAIRS)):
        for side, vecs in (("queries", q), ("passages", p)):
            ref = enc[side][i]
            assert list(vecs[i].shape) == ref["colbert_vecs_shape"]
            worst = max(worst, float((vecs[i][0] - torch.tensor(ref["colbert_vecs_first_row"])).abs().max()))
            worst = max(worst, float((vecs[i].sum(0) - torch.tensor(ref["colbert_vecs_column_sum"])).abs().max()))
    assert worst < TOL
    scores = m3.compute_score(PAIRS)
    assert scores == pytest.approx(enc["colbert_score"], abs=TOL)


@pytest.mark.parametrize("run", range(len(GOLDEN["compute_score_runs"])))
def test_compute_score_runs_match_the_peer(run: int) -> None:
    """Our (unpadded) scores equal the peer's batch-1 run; its batch-256 runs are ours with pads floored at 0."""
    ref = GOLDEN["compute_score_runs"][run]
    ranker = colbert(query_max_length=ref["max_query_length"], max_length=ref["max_passage_length"])
    model = ranker.model
    assert model.token_ids([p[0] for p in PAIRS], ref["max_query_length"]) == ref["query_input_ids"]
    assert model.token_ids([p[1] for p in PAIRS], ref["max_passage_length"]) == ref["passage_input_ids"]
    peer = ref["scores"]["colbert"]
    ours = ranker.compute_score(PAIRS)
    if ref["batch_size"] == 1:
        assert ours == pytest.approx(peer, abs=TOL)
        return
    q = model.encode([p[0] for p in PAIRS], ref["max_query_length"])
    p = model.encode([p[1] for p in PAIRS], ref["max_passage_length"])
    longest = max(len(x) for x in p)
    floored = []
    for qi, pi in zip(q, p):
        best = (qi @ pi.T).max(dim=-1).values
        floored.append(float((best.clamp(min=0) if len(pi) < longest else best).mean()))
    assert floored == pytest.approx(peer, abs=TOL)
    for i, (a, b) in enumerate(zip(ours, peer)):  # only where the floor lifted a negative best match
        assert abs(a - b) < TOL or float((q[i] @ p[i].T).max(dim=-1).values.min()) < 0


def test_pads_never_win_a_max_and_batch_size_does_not_matter(m3) -> None:
    query = torch.tensor([[1.0, 0.0]])
    short, long = torch.tensor([[-1.0, 0.0]]), torch.tensor([[-1.0, 0.0], [0.0, 1.0], [-0.6, 0.8]])
    assert score_query(query, [short, long], batch_size=2) == pytest.approx([-1.0, 0.0])
    block, mask = pad_matrices([short, long])
    assert mask.tolist() == [[True, False, False], [True, True, True]]
    assert maxsim(query[None], torch.ones(1, 1, dtype=torch.bool), block, mask).tolist() == [[-1.0, 0.0]]
    assert colbert(batch_size=1).compute_score(PAIRS) == pytest.approx(m3.compute_score(PAIRS), abs=1e-6)


# ---------------------------------------------------------------- behaviour


def test_plain_encoder_gets_an_identity_projection(tiny_encoder: Path) -> None:
    """Zero-shot ColBERT over a plain encoder = MaxSim of its own normalised token states (CLS dropped)."""
    from transformers import AutoModel, AutoTokenizer

    ranker = colbert(model_path=str(tiny_encoder))
    assert ranker.describe()["projection"] == "identity" and ranker.model.dim == 32
    tok, enc = AutoTokenizer.from_pretrained(tiny_encoder), AutoModel.from_pretrained(tiny_encoder).eval()

    def vectors(text: str) -> torch.Tensor:
        with torch.no_grad():
            hidden = enc(**tok(text, return_tensors="pt")).last_hidden_state[0, 1:]
        return torch.nn.functional.normalize(hidden, dim=-1)

    q, p = vectors("how long do fleas live"), vectors("fleas live for a year")
    expected = float((q @ p.T).max(-1).values.mean())
    assert ranker.compute_score(("how long do fleas live", "fleas live for a year")) == pytest.approx(
        [expected], abs=1e-5
    )


def test_truncation_empty_sides_and_one_passage(m3) -> None:
    """Long passages and queries are cut and counted; an empty side is scored as FlagEmbedding does (its
    special tokens only: the golden has an empty passage); a list of one passage ranks."""
    ranker = colbert(max_length=16, query_max_length=8)
    long = " ".join(["fleas live for a long time in warm houses"] * 10)
    docs = [long, "fleas", ""]
    result = ranker.rank("how long do fleas live in a warm house all year", docs)
    assert result.stats["truncated_passages"] == 1 and result.stats["truncated_queries"] == 1
    assert result.stats["tokens_processed"] == sum(ranker.model.token_counts(docs, 16)[0]) + 8
    assert ranker.model.token_counts(docs, 16)[0][0] == 16 and ranker.model.token_counts([""], 16)[0] == [2]
    assert all(np.isfinite(m3.compute_score([("", "fleas"), ("fleas", "")])))
    assert PAIRS[3][1] == ""  # the golden's empty passage, matched by the parity tests above
    one = m3.rank("fleas", ["fleas live a year"])
    assert [c.docid for c in one.candidates] == ["0"] and one.stats["truncated_passages"] == 0


def test_embedding_cache_encodes_each_passage_once(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "emb.sqlite"
    ranker = colbert(embedding_cache=str(path))
    docs = ["fleas live a year", "concrete floors", "a judgment declares rights"]
    first = ranker.compute_score([("fleas", d) for d in docs])
    encoded: list[str] = []
    again = colbert(embedding_cache=str(path))
    original = again.model.encode
    monkeypatch.setattr(again.model, "encode", lambda texts, *a, **k: encoded.extend(texts) or original(texts, *a, **k))
    second = again.compute_score([("other query", d) for d in docs] + [("fleas", d) for d in docs])
    assert encoded == ["other query", "fleas"]  # queries only: every passage came from the cache
    assert second[3:] == pytest.approx(first, abs=1e-6) and again.cache.hits == 3
    shorter = colbert(embedding_cache=str(path), max_length=8)
    shorter.compute_score([("fleas", docs[0])])
    assert shorter.cache.misses == 1 and EmbeddingCache(path).count() == 4  # other settings, other key


def test_cache_stores_matrices_and_keeps_vectors(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    mats = [np.arange(6, dtype=np.float32).reshape(3, 2), np.ones((1, 2), np.float32), np.zeros((0, 2), np.float32)]
    cache.put_many("m", ["a", "b", "c"], mats, matrix=True)
    got = cache.get_many("m", ["a", "b", "c", "d"], matrix=True)
    assert [g.shape for g in got[:3]] == [(3, 2), (1, 2), (0, 2)] and got[3] is None
    assert np.array_equal(got[0], mats[0])
    cache.put_many("v", ["a"], np.ones((1, 4), np.float32))
    assert cache.get_many("v", ["a"])[0].shape == (4,)


# ---------------------------------------------------------------- bad input


def test_a_projection_over_a_named_frozen_encoder_loads_like_a_full_folder(tmp_path: Path) -> None:
    """colbert_linear.pt + colbert_encoder.json (the shipped layout): the encoder comes from the named folder."""
    light = tmp_path / "light"
    light.mkdir()
    shutil.copy(M3 / "colbert_linear.pt", light / "colbert_linear.pt")
    (light / "colbert_encoder.json").write_text(json.dumps({"encoder": str(M3)}))
    pairs = [("what is a flea", "fleas are insects"), ("concrete", "floors cost money")]
    full = build_reranker("colbert", model_path=str(M3)).compute_score(pairs)
    assert build_reranker("colbert", model_path=str(light)).compute_score(pairs) == pytest.approx(full, abs=1e-6)
    (light / "colbert_linear.pt").unlink()
    with pytest.raises(InputError, match="colbert_encoder.json without the colbert_linear.pt"):
        load_colbert(str(light))


def test_other_families_and_broken_folders_are_refused(tmp_path: Path, tiny_encoder: Path) -> None:
    with pytest.raises(InputError, match="XLMRobertaForSequenceClassification.*|no colbert_linear.pt"):
        colbert(model_path=str(PEERS / "bge-reranker-tiny"))
    with pytest.raises(InputError, match=r"ListConRanker checkpoint \(list_transformer.pt\).*no colbert_linear.pt"):
        colbert(model_path=str(PEERS / "listconranker-tiny"))
    pe_rank = tmp_path / "pe"
    shutil.copytree(tiny_encoder, pe_rank)
    (pe_rank / "perank_config.json").write_text("{}")
    with pytest.raises(InputError, match="PE-Rank checkpoint.*no colbert_linear.pt"):
        colbert(model_path=str(pe_rank))
    broken = tmp_path / "m3"
    shutil.copytree(M3, broken)
    (broken / "colbert_linear.pt").unlink()
    with pytest.raises(InputError, match="sparse_linear.pt.*without its colbert_linear.pt"):
        colbert(model_path=str(broken))
    torch.save({"weight": torch.zeros(4, 7)}, broken / "colbert_linear.pt")
    with pytest.raises(InputError, match=r"colbert_linear.pt: expected a 'weight' of shape \[dim, 32\]"):
        colbert(model_path=str(broken))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no colbert_linear.pt and no config.json"):
        colbert(model_path=str(tmp_path / "empty"))


def test_bad_options_and_missing_default(monkeypatch, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="float32 on CPU"):
        colbert(dtype="fp16")
    with pytest.raises(InputError, match="max_length=1"):
        colbert(max_length=1)
    with pytest.raises(InputError, match="query_max_length=4096: .* at most 512 tokens"):
        colbert(query_max_length=4096)
    with pytest.raises(InputError, match="has no option 'passage_max_length'"):
        colbert(passage_max_length=64)
    with pytest.raises(InputError, match="no-such-org/colbert: no such model folder, and the Hugging Face hub"):
        colbert(model_path="no-such-org/colbert")  # offline in the tests
    monkeypatch.setattr(colbert_reranker, "DEFAULT_CHECKPOINT", tmp_path / "nope")
    with pytest.raises(InputError, match="recipes/colbert/train_small.sh"):
        build_reranker("colbert")


# ---------------------------------------------------------------- training


def test_losses_follow_flagembedding() -> None:
    scores = torch.randn(2, 6)
    assert group_scores(scores, 3).tolist() == [scores[0, :3].tolist(), scores[1, 3:].tolist()]
    teacher = torch.softmax(torch.randn(2, 3), -1)
    targets = torch.tensor([0, 3])
    expected, mask = 0.0, torch.zeros_like(scores)
    for i in range(3):  # FlagEmbedding's distill_loss("m3_kd_loss"), written out
        ce = torch.nn.functional.cross_entropy(scores + mask, targets + i, reduction="none")
        expected += torch.mean(teacher[:, i] * ce)
        mask[torch.arange(2), targets + i] = torch.finfo(scores.dtype).min
    assert float(m3_kd_loss(teacher, scores, targets, 3)) == pytest.approx(float(expected), rel=1e-6)


def write_groups(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


ROWS = [
    {"query": "how long do fleas live", "pos": ["fleas live a year"], "neg": ["concrete floors", "paris is big"]},
    {"query": "what is a judgment", "pos": ["a judgment declares rights"], "neg": ["fleas live a year"]},
    {"query": "cost of concrete", "pos": ["concrete floors cost money"], "neg": ["paris is big", "fleas jump"]},
]


def test_training_runner_trains_saves_and_resumes(tmp_path: Path, tiny_encoder: Path) -> None:
    scored = [{**r, "pos_scores": [1.0], "neg_scores": [0.0] * len(r["neg"])} for r in ROWS]
    data = write_groups(tmp_path / "train.jsonl", scored)
    out = tmp_path / "out"
    common = ["--model_name_or_path", str(tiny_encoder), "--data_path", str(data), "--output_dir", str(out)]
    common += ["--use_cpu", "--report_to", "none", "--per_device_train_batch_size", "2", "--train_group_size", "3"]
    common += ["--save_steps", "2", "--query_max_len", "16", "--passage_max_len", "16"]
    get_runner("colbert").run([*common, "--max_steps", "2"])
    assert (out / "colbert_linear.pt").is_file() and (out / "checkpoint-2" / "colbert_linear.pt").is_file()
    trained = colbert(model_path=str(out))
    assert trained.describe()["projection"] == "colbert_linear.pt"
    assert not torch.equal(trained.model.colbert_linear.weight, torch.eye(32))
    get_runner("colbert").run([*common, "--max_steps", "3"])  # resumes from checkpoint-2
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 3
    # the Trainer's reload of a checkpoint's model.safetensors (bare encoder names) lands on the encoder
    model = ColbertTrainingModel(load_colbert(str(tiny_encoder)))
    from safetensors.torch import load_file

    model.load_state_dict(load_file(str(out / "checkpoint-2" / "model.safetensors")), strict=True)
    ref = load_colbert(str(out / "checkpoint-2")).encoder.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in model.colbert.encoder.state_dict().items())


def test_fix_encoder_trains_the_projection_only(tmp_path: Path, tiny_encoder: Path) -> None:
    data = write_groups(tmp_path / "train.jsonl", ROWS)
    out = tmp_path / "frozen"
    get_runner("colbert").run(
        ["--model_name_or_path", str(tiny_encoder), "--data_path", str(data), "--output_dir", str(out), "--fix_encoder"]
        + ["--use_cpu", "--report_to", "none", "--max_steps", "2", "--train_group_size", "2", "--no_in_batch_negatives"]
    )
    before, after = load_colbert(str(tiny_encoder)), load_colbert(str(out))
    assert all(torch.equal(v, after.encoder.state_dict()[k]) for k, v in before.encoder.state_dict().items())
    assert not torch.equal(before.colbert_linear.weight, after.colbert_linear.weight)


def test_bad_training_data_names_file_and_line(tmp_path: Path, tiny_encoder: Path) -> None:
    data = write_groups(tmp_path / "train.jsonl", [ROWS[0], {"query": "q", "pos": [], "neg": ["n"]}])
    argv = ["--model_name_or_path", str(tiny_encoder), "--data_path", str(data), "--output_dir", str(tmp_path / "o")]
    with pytest.raises(InputError, match=rf"{data}:2: .*no positive"):
        get_runner("colbert").run([*argv, "--use_cpu", "--report_to", "none"])
    with pytest.raises(InputError, match="--temperature 0.0: must be positive"):
        get_runner("colbert").run([*argv, "--use_cpu", "--temperature", "0"])
