"""ListConRanker: parity with the mteb peer's scores, the iterative schedule, bad input, and the training runner.

The golden scores were computed by the peer code on the tiny fixture in the published layout
(``tests/fixtures/peers/make_golden.py``); perank must match them within 1e-4 (measured: 0 for ``compute_score``,
about 1.2e-7 for ``iterative_inference``).
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from pathlib import Path

import pytest
import torch

from helpers.paths import PEERS
from perank.families.listconranker import checkpoint
from perank.families.listconranker.iterative import IterativeState, drop_count, schedule
from perank.families.listconranker.model import LIST_TRANSFORMER_NAME, TEMPLATE_PREFIX, ListConRankerConfig
from perank.families.listconranker.reranker import ListConRankerReranker
from perank.families.listconranker.training.losses import circle_loss
from perank.types import InputError

TINY = PEERS / "listconranker-tiny"
GOLDEN = json.loads((PEERS / "golden_listconranker.json").read_text(encoding="utf-8"))
TOL = 1e-4


@pytest.fixture(scope="module")
def ranker() -> ListConRankerReranker:
    return ListConRankerReranker(model_path=str(TINY), device="cpu")


def flat(values: list) -> list[float]:
    return [x for v in values for x in (v if isinstance(v, list) else [v])]


def max_diff(a: list[float], b: list[float]) -> float:
    assert len(a) == len(b)
    return max((abs(x - y) for x, y in zip(a, b)), default=0.0)


# ---------------------------------------------------------------------------------------------- parity


def test_golden_was_made_on_these_fixture_files() -> None:
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in TINY.iterdir() if p.is_file()}
    assert digests == GOLDEN["sha256"]


def test_tokenization_matches_the_peer(ranker: ListConRankerReranker) -> None:
    for name, expected in GOLDEN["input_ids_max_length_512"].items():
        got = [ranker.model.tokenizer(t, truncation=True, max_length=512)["input_ids"] for t in GOLDEN["inputs"][name]]
        assert got == expected, name


def test_compute_score_matches_the_peer(ranker: ListConRankerReranker) -> None:
    inputs = GOLDEN["inputs"]
    a, b, single = inputs["list_a"], inputs["list_b"], inputs["single"]
    calls = {
        "compute_score([list_a, list_b])": lambda: ranker.compute_score([a, b]),
        "compute_score([list_a])": lambda: ranker.compute_score([a]),
        "compute_score([list_b])": lambda: ranker.compute_score([b]),
        "compute_score([list_a, list_b], max_length=16)": lambda: ranker.compute_score([a, b], max_length=16),
        "compute_score([single])": lambda: ranker.compute_score([single]),
    }
    worst = 0.0
    for call, run in calls.items():
        got, expected = run(), GOLDEN["compute_score"][call]
        assert len(got) == call.count("list_") + call.count("single")  # always one score list per list
        worst = max(worst, max_diff(flat(got), flat(expected)))
    assert worst < TOL


def test_iterative_inference_matches_the_peer_round_by_round(ranker: ListConRankerReranker) -> None:
    golden = GOLDEN["iterative_inference"]
    query, *passages = GOLDEN["inputs"]["iterative"]
    assert max_diff(ranker.iterative_inference([query, *passages]), golden["scores"]) < TOL
    # the peer's rounds: which passages, in which order, with which scores (a cut must fall in the same place)
    state = IterativeState(len(passages))
    for record in golden["rounds"]:
        assert state.pending == record["passage_indices"]
        (scores,) = ranker.compute_score([[query, *(passages[i] for i in state.pending)]])
        assert max_diff(scores, record["scores"]) < TOL
        state.update(scores)
    assert state.done and state.calls == len(golden["rounds"])


def test_the_schedule_replays_the_peers_rounds_from_its_own_scores() -> None:
    rounds = GOLDEN["iterative_inference"]["rounds"]
    state = IterativeState(len(rounds[0]["passage_indices"]))
    for record in rounds:
        assert state.pending == record["passage_indices"]
        state.update(record["scores"])
    assert state.final == pytest.approx(GOLDEN["iterative_inference"]["scores"], abs=1e-12)


# ---------------------------------------------------------------------------------------------- the schedule


def test_reference_check_4_hundred_passages_take_seven_calls() -> None:
    sizes = schedule(100)
    assert [a - b for a, b in zip(sizes, sizes[1:])] == [20, 16, 13, 11, 10, 10]
    assert len(sizes) == 7 and sizes[-1] == 20
    assert drop_count(21) == 10 and drop_count(100) == 20 and schedule(20) == [20] and schedule(0) == []


def test_ties_with_the_last_dropped_passage_are_dropped_too() -> None:
    state = IterativeState(25)
    scores = [0.1] * 12 + [0.5 + 0.01 * i for i in range(13)]  # the 10th and 11th and 12th lowest tie
    state.update(scores)
    assert state.drops == [12] and len(state.pending) == 13
    assert all(state.final[i] == pytest.approx(0.1) for i in range(12))  # round 0: score + 0
    state.update([0.2] * 13)
    assert state.done and state.final[12] == pytest.approx(1.2)  # the last round: score + 1


def test_all_tied_passages_are_dropped_together_instead_of_failing() -> None:
    state = IterativeState(30)  # the published loop raises IndexError here
    state.update([0.5] * 30)
    assert state.done and state.calls == 1 and state.final == [0.5] * 30


# ---------------------------------------------------------------------------------------------- ranking


def test_rank_orders_by_iterative_scores_and_counts_what_it_did(ranker: ListConRankerReranker) -> None:
    query, *passages = GOLDEN["inputs"]["iterative"]
    result = ranker.rank(query, passages)
    expected = GOLDEN["iterative_inference"]["scores"]
    assert [c.docid for c in result.candidates] == [str(i) for i in sorted(range(45), key=lambda i: -expected[i])]
    assert result.stats["model_calls"] == 4 and result.stats["tokens_generated"] == 0
    tokens = ranker.model.tokenizer([query, *passages], truncation=True, max_length=512)["input_ids"]
    assert result.stats["tokens_processed"] == sum(len(ids) for ids in tokens)


def test_single_mode_is_one_pass_and_scores_do_not_depend_on_order(ranker: ListConRankerReranker) -> None:
    single = ListConRankerReranker(model_path=str(TINY), device="cpu", mode="single", batch_size=3)
    query, *passages = GOLDEN["inputs"]["list_b"]
    result = single.rank(query, passages)
    scores = {int(c.docid): c.score for c in result.candidates}
    (expected,) = GOLDEN["compute_score"]["compute_score([list_b])"]
    assert [scores[i] for i in range(len(passages))] == pytest.approx(expected, abs=TOL)
    assert result.stats["model_calls"] == 1
    assert result.stats["truncated_passages"] == 1  # the passage of > 512 tokens
    order = list(range(len(passages)))
    random.Random(0).shuffle(order)
    (shuffled,) = ranker.compute_score([[query, *(passages[i] for i in order)]])
    assert [shuffled[order.index(i)] for i in range(len(passages))] == pytest.approx(expected, abs=1e-5)


def test_one_passage_empty_texts_and_truncation(ranker: ListConRankerReranker) -> None:
    query, passage = GOLDEN["inputs"]["single"]
    (expected,) = GOLDEN["compute_score"]["compute_score([single])"]
    assert ranker.compute_score([[query, passage]]) == [[pytest.approx(expected, abs=TOL)]]
    assert ranker.iterative_inference([query, passage]) == [pytest.approx(expected, abs=TOL)]  # the peer fails
    assert ranker.compute_score([[query]]) == [[]] and ranker.compute_score([]) == []
    one = ranker.rank(query, [passage])
    assert len(one.candidates) == 1 and one.stats["model_calls"] == 1
    scores = ranker.compute_score([["", "", "some passage"]])[0]  # empty texts embed as [CLS] [SEP], as the peer
    assert len(scores) == 2 and all(0.0 < s < 1.0 for s in scores)
    short = ListConRankerReranker(model_path=str(TINY), device="cpu", max_length=16)
    result = short.rank(query, [passage, "short one"])
    assert result.stats["truncated_passages"] == 1
    assert short.describe()["max_length"] == 16 and ranker.describe()["max_length"] == 512


def test_embedding_cache_reuses_pooled_embeddings(ranker: ListConRankerReranker, tmp_path: Path) -> None:
    cached = ListConRankerReranker(model_path=str(TINY), device="cpu", embedding_cache=str(tmp_path / "emb.sqlite"))
    query, *passages = GOLDEN["inputs"]["list_a"]
    first = cached.rank(query, passages + [passages[0]])
    second = cached.rank(query, passages + [passages[0]])
    assert second.stats["embedding_cache_hits"] == len(passages) + 2 and second.stats["tokens_processed"] == 0
    assert first.stats["tokens_processed"] == ranker.rank(query, passages).stats["tokens_processed"]  # repeat once
    assert [(c.docid, c.score) for c in first.candidates] == [(c.docid, c.score) for c in second.candidates]


# ---------------------------------------------------------------------------------------------- bad input


def test_bad_lists_and_options_are_input_errors(ranker: ListConRankerReranker) -> None:
    with pytest.raises(InputError, match="list of lists"):
        ranker.compute_score("query")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"lists\[0\]: expected a list"):
        ranker.compute_score(["query", "passage"])
    with pytest.raises(InputError, match=r"lists\[0\]\[1\]"):
        ranker.compute_score([["query", 3]])  # type: ignore[list-item]
    with pytest.raises(InputError, match="max_length 1"):
        ranker.compute_score([["q", "p"]], max_length=1)
    with pytest.raises(InputError, match="only 512 positions"):
        ranker.compute_score([["q", "p"]], max_length=600)
    for options, message in (({"mode": "greedy"}, "mode 'greedy'"), ({"dtype": "fp16"}, "CUDA only")):
        with pytest.raises(InputError, match=message):
            ListConRankerReranker(model_path=str(TINY), device="cpu", **options)


def test_folders_that_are_not_listconranker_name_what_is_missing(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(InputError, match=r"no linear_in_embedding.pt, no list_transformer.pt"):
        ListConRankerReranker(model_path=str(PEERS / "bge-reranker-tiny"), device="cpu")
    with pytest.raises(InputError, match="no such folder"):
        ListConRankerReranker(model_path=str(tmp_path / "nowhere"), device="cpu")
    with pytest.raises(InputError, match="hub could not provide it"):
        ListConRankerReranker(model_path="no-such-owner/no-such-listconranker", device="cpu")
    monkeypatch.setattr(checkpoint, "DEFAULT_CHECKPOINT", tmp_path / "listconranker-minilm")
    with pytest.raises(InputError, match="recipes/listconranker/train_small.sh"):
        ListConRankerReranker(device="cpu")
    broken = shutil.copytree(TINY, tmp_path / "broken")
    data = (broken / LIST_TRANSFORMER_NAME).read_bytes()
    (broken / LIST_TRANSFORMER_NAME).write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=LIST_TRANSFORMER_NAME):
        ListConRankerReranker(model_path=str(broken), device="cpu")


# ---------------------------------------------------------------------------------------------- layout


def test_saved_folder_reloads_and_keeps_the_published_layout(ranker: ListConRankerReranker, tmp_path: Path) -> None:
    ranker.model.save_pretrained(tmp_path / "saved")
    state = torch.load(tmp_path / "saved" / LIST_TRANSFORMER_NAME, weights_only=True)
    published = torch.load(TINY / LIST_TRANSFORMER_NAME, weights_only=True)
    assert set(state) == set(published)  # the peer's strict load_state_dict reads it
    assert torch.equal(state[TEMPLATE_PREFIX + "linear1.weight"], state["list_transformer.layers.0.linear1.weight"])
    again = ListConRankerReranker(model_path=str(tmp_path / "saved"), device="cpu")
    lists = [GOLDEN["inputs"]["list_a"]]
    assert flat(again.compute_score(lists)) == pytest.approx(flat(ranker.compute_score(lists)), abs=1e-6)


def test_scaled_sizes() -> None:
    assert ListConRankerConfig.scaled(1024, 16) == ListConRankerConfig(1024, 1792, 16, 2, 2048, 512)
    small = ListConRankerConfig.scaled(384, 12, max_length=256)
    assert (small.list_dim, small.ffn_dim, small.num_heads, small.max_length) == (672, 768, 12, 256)


# ---------------------------------------------------------------------------------------------- training


def test_circle_loss_matches_its_formula_and_pushes_positives_up() -> None:
    scores = torch.tensor([0.6, 0.3, 0.5, 0.1], requires_grad=True)
    targets = torch.tensor([1.0, 1.0, 0.0, 0.0])
    gamma, m = 32.0, 0.25
    loss = circle_loss(scores, targets, gamma, m)
    s = scores.detach().tolist()
    neg = sum(torch.exp(torch.tensor(gamma * max(x + m, 0) * (x - m))) for x in s[2:])
    pos = sum(torch.exp(torch.tensor(-gamma * max(1 + m - x, 0) * (x - 1 + m))) for x in s[:2])
    assert loss.detach().item() == pytest.approx(float(torch.log1p(neg * pos)), rel=1e-5)
    loss.backward()
    assert (scores.grad[:2] < 0).all() and (scores.grad[2:] > 0).all()
    assert circle_loss(scores, torch.ones(4), gamma, m).detach().item() == 0.0  # no negative: nothing to compare


def write_groups(path: Path, bad: bool = False) -> Path:
    rows = [
        {"query": f"what is item {i}", "pos": [f"item {i} is a thing", f"all about item {i}"], "neg": ["x", "y", "z"]}
        for i in range(4)
    ]
    if bad:
        rows[2]["pos"] = []
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_two_training_stages_and_the_output_loads(tmp_path: Path, write_tiny_encoder) -> None:
    from safetensors.torch import load_file

    from perank.training.runner import get_runner

    encoder = write_tiny_encoder(tmp_path / "encoder")
    common = ["--data_path", str(write_groups(tmp_path / "train.jsonl")), "--max_steps", "2", "--use_cpu"]
    common += ["--report_to", "none", "--per_device_train_batch_size", "2", "--group_size", "4"]
    common += ["--max_length", "32", "--save_strategy", "no", "--learning_rate", "1e-3"]
    s1, s2 = tmp_path / "s1", tmp_path / "s2"
    get_runner("listconranker").run(
        ["--model_name_or_path", str(encoder), "--freeze_embedder", "True", "--output_dir", str(s1), *common]
    )
    base, after_s1 = load_file(encoder / "model.safetensors"), load_file(s1 / "model.safetensors")
    assert all(torch.equal(base[k], after_s1[k]) for k in base)  # stage 1 leaves the embedder alone
    get_runner("listconranker").run(["--model_name_or_path", str(s1), "--output_dir", str(s2), *common])
    after_s2 = load_file(s2 / "model.safetensors")
    assert any(not torch.equal(after_s1[k], after_s2[k]) for k in after_s1)  # stage 2 trains it
    trained = ListConRankerReranker(model_path=str(s2), device="cpu")
    assert trained.describe()["max_length"] == 32
    assert len(trained.rank("what is item 1", ["item 1 is a thing", "x", "z"]).candidates) == 3

    # a resumed Trainer reloads a checkpoint folder's model.safetensors, which is the embedder's own file
    from perank.families.listconranker.training.model import ListConRankerTrainingModel

    module = ListConRankerTrainingModel(checkpoint.init_model(str(s1)), freeze_embedder=False, gamma=32, margin=0.25)
    keys = module.load_state_dict(after_s2, strict=False)
    assert not keys.missing_keys and not keys.unexpected_keys
    assert torch.equal(
        module.model.embedder.state_dict()["embeddings.word_embeddings.weight"],
        after_s2["embeddings.word_embeddings.weight"],
    )


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path: Path, write_tiny_encoder) -> None:
    from safetensors.torch import load_file

    from perank.training.runner import get_runner

    common = ["--model_name_or_path", str(write_tiny_encoder(tmp_path / "encoder")), "--use_cpu"]
    common += ["--data_path", str(write_groups(tmp_path / "train.jsonl")), "--report_to", "none"]
    common += ["--per_device_train_batch_size", "2", "--group_size", "4", "--max_length", "32"]
    common += ["--learning_rate", "1e-3", "--lr_scheduler_type", "constant", "--save_steps", "2"]
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    get_runner("listconranker").run([*common, "--output_dir", str(whole), "--max_steps", "3"])
    get_runner("listconranker").run([*common, "--output_dir", str(resumed), "--max_steps", "2"])
    get_runner("listconranker").run([*common, "--output_dir", str(resumed), "--max_steps", "3"])  # from checkpoint-2
    a, b = load_file(whole / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    a, b = (torch.load(d / LIST_TRANSFORMER_NAME, weights_only=True) for d in (whole, resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bad_training_data_and_flags_are_named(tmp_path: Path) -> None:
    from perank.training.runner import get_runner

    bad = write_groups(tmp_path / "bad.jsonl", bad=True)
    args = ["--model_name_or_path", str(TINY), "--output_dir", str(tmp_path / "out"), "--use_cpu"]
    with pytest.raises(InputError, match=r"bad.jsonl:3: a group with no positive"):
        get_runner("listconranker").run([*args, "--data_path", str(bad)])
    with pytest.raises(InputError, match="--circle_margin 0.7"):
        get_runner("listconranker").run([*args, "--data_path", str(bad), "--circle_margin", "0.7"])
    with pytest.raises(InputError, match="--max_positives 4"):
        get_runner("listconranker").run([*args, "--data_path", str(bad), "--group_size", "4", "--max_positives", "4"])
