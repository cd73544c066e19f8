"""The cross-encoder family: parity with FlagEmbedding's golden scores, bad input, and the training runner."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from helpers.paths import PEERS, REPO
from perank.cli.train import main as train_main
from perank.families.cross_encoder import model as ce_model
from perank.families.cross_encoder.inputs import PairTemplate, encode_pairs
from perank.families.cross_encoder.reranker import CrossEncoderReranker
from perank.families.cross_encoder.training import group_loss
from perank.ranking.pointwise import sigmoid
from perank.ranking.registry import build_reranker
from perank.types import Candidate, InputError, Query, Request

TINY = PEERS / "bge-reranker-tiny"
GOLDEN = json.loads((PEERS / "golden_cross_encoder.json").read_text(encoding="utf-8"))
PAIRS = [tuple(p) for p in GOLDEN["pairs"]]
RUNS = {run["max_length"]: run for run in GOLDEN["runs"]}


@pytest.fixture(scope="module", params=sorted(RUNS))
def ranker(request: pytest.FixtureRequest) -> CrossEncoderReranker:
    return CrossEncoderReranker(model_path=str(TINY), device="cpu", max_length=request.param)


def test_golden_ids_and_scores(ranker: CrossEncoderReranker) -> None:
    """Token ids are FlagEmbedding's exactly; scores agree within 1e-4 (measured: ~3e-7, fp32 padding noise)."""
    run = RUNS[ranker.max_length]
    encoded = encode_pairs(
        ranker.tokenizer, ranker.template, PAIRS, run["query_max_length"], run["max_length"], run["max_length"]
    )
    assert [e.input_ids for e in encoded] == run["input_ids"]
    scores = ranker.compute_score(PAIRS)
    assert max(abs(a - b) for a, b in zip(scores, run["scores"])) < 1e-4
    assert max(abs(a - b) for a, b in zip(scores, run["scores_batch_size_1"])) < 1e-4
    normalized = ranker.compute_score(PAIRS, normalize=True)
    assert max(abs(a - b) for a, b in zip(normalized, run["scores_normalized"])) < 1e-4
    assert ranker.normalize_scores(run["scores"]) == run["scores_normalized"]  # FlagEmbedding's float64 sigmoid


def test_reference_check_1_float64_sigmoid() -> None:
    assert [sigmoid(x) for x in [-5.65234375]] == [0.003497010252573502]
    assert [sigmoid(x) for x in [-8.1875, 5.26171875]] == [0.00027803096387751553, 0.9948403768236574]
    assert [sigmoid(x) for x in [-1000.0, 1000.0]] == [0.0, 1.0]


def test_truncation_is_counted_and_a_single_passage_ranks(ranker: CrossEncoderReranker) -> None:
    """At max_length 16 five of the seven golden passages lose tokens (the pair or the passage alone is cut)."""
    requests = [Request(Query(str(i), q), [Candidate("d", p, rank=1)]) for i, (q, p) in enumerate(PAIRS)]
    stats = [r.stats for r in ranker.rerank(requests)]
    expected = 5 if ranker.max_length == 16 else 1
    assert sum(st["truncated_passages"] for st in stats) == expected
    assert [st["tokens_processed"] for st in stats] == [len(ids) for ids in RUNS[ranker.max_length]["input_ids"]]
    one = ranker.rank("what is a flea", ["A flea is an insect."])
    assert [c.docid for c in one.candidates] == ["0"] and one.candidates[0].rank == 1


def test_empty_sides_score_as_the_peer() -> None:
    ranker = CrossEncoderReranker(model_path=str(TINY), device="cpu")
    empty_passage = ranker.compute_score([PAIRS[3]])  # ("what is a flea", "")
    assert empty_passage == pytest.approx([RUNS[512]["scores"][3]], abs=1e-4)
    assert len(ranker.compute_score([("", "a passage"), ("", "")])) == 2
    assert ranker.compute_score([]) == []
    with pytest.raises(InputError, match=r"pairs\[0\]"):
        ranker.compute_score([("only a query",)])


def test_bert_template_matches_the_tokenizer(tmp_path: Path, write_tiny_encoder) -> None:
    """For BERT tokenizers the pair is [CLS] q [SEP] p [SEP] with segment ids 0/1, as tokenizer(q, p) gives."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(write_tiny_encoder(tmp_path / "enc"))
    template = PairTemplate.from_tokenizer(tok)
    pairs = [("how long do fleas live", "fleas live for a year or more, depending on hosts")]
    (got,) = encode_pairs(tok, template, pairs, 12, 16, 16)
    want = tok(*pairs[0], truncation="only_second", max_length=16)
    assert got.input_ids == want["input_ids"] and got.token_type_ids == want["token_type_ids"] and got.truncated


def test_other_folders_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match=r"no sequence-classification head .*XLMRobertaModel.*ColBERT"):
        CrossEncoderReranker(model_path=str(PEERS / "bge-m3-tiny"), device="cpu")
    with pytest.raises(InputError, match=r"BertModel.*ListConRanker"):
        CrossEncoderReranker(model_path=str(PEERS / "listconranker-tiny"), device="cpu")
    with pytest.raises(InputError, match="no config.json"):
        CrossEncoderReranker(model_path=str(PEERS / "tiny-xlmr-tokenizer"), device="cpu")
    broken = tmp_path / "broken"
    shutil.copytree(TINY, broken)
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"model.safetensors: truncated"):
        CrossEncoderReranker(model_path=str(broken), device="cpu")
    three = tmp_path / "three"
    shutil.copytree(TINY, three)
    config = json.loads((three / "config.json").read_text())
    config["id2label"] = {"0": "a", "1": "b", "2": "c"}
    (three / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match="3 labels"):
        CrossEncoderReranker(model_path=str(three), device="cpu")
    with pytest.raises(InputError, match="max_length 1024: .* takes at most 512 tokens"):
        CrossEncoderReranker(model_path=str(TINY), device="cpu", max_length=1024)
    with pytest.raises(InputError, match="half precision is for CUDA only"):
        CrossEncoderReranker(model_path=str(TINY), device="cpu", dtype="fp16")
    with pytest.raises(InputError, match="batch_sise"):
        build_reranker("bge-reranker", model_path=str(TINY), batch_sise=4)
    monkeypatch.setattr(ce_model, "DEFAULT_CHECKPOINT", tmp_path / "absent")
    with pytest.raises(InputError, match="recipes/cross_encoder/train_small.sh"):
        CrossEncoderReranker(device="cpu")


def test_group_loss() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    ce = torch.nn.functional.cross_entropy(logits, torch.zeros(2, dtype=torch.long))
    assert group_loss(logits, None, 1.0, 1.0) == pytest.approx(ce.item())
    assert group_loss(logits, logits.clone(), 1.0, 2.0) == pytest.approx(ce.item())  # same softmax: no KL
    assert group_loss(logits, -logits, 0.5, 1.0) > ce
    # the teacher's own temperature: cosines a few tenths apart, sharpened at 0.05, are the teacher's ranking
    cosines = torch.tensor([[0.3, 0.6, 0.5]])
    sharp = torch.softmax(cosines / 0.05, dim=-1)
    student = torch.tensor([[0.0, 2.0, 1.0]])
    kl = F.kl_div(F.log_softmax(student, -1), sharp.log(), log_target=True, reduction="batchmean")
    expected = F.cross_entropy(student, torch.zeros(1, dtype=torch.long)) + kl
    assert group_loss(student, cosines, 1.0, 1.0, 0.05).item() == pytest.approx(expected.item(), rel=1e-6)
    assert group_loss(student, cosines, 1.0, 1.0, None) == group_loss(student, cosines, 1.0, 1.0)
    assert group_loss(student, cosines, 1.0, 1.0, 0.05) != group_loss(student, cosines, 1.0, 1.0)


def write_groups(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def group(i: int, scores: bool = False) -> dict:
    row = {"query": f"how long do fleas live {i}", "pos": [f"fleas live a year ({i})"], "neg": ["cats", "dogs (x)"]}
    if scores:
        row |= {"pos_scores": [0.9], "neg_scores": [0.1, 0.2]}
    return row


COMMON = ["--family", "cross-encoder", "--max_steps", "2", "--use_cpu", "--report_to", "none"]
COMMON += ["--per_device_train_batch_size", "2", "--group_size", "3", "--query_max_len", "8"]
COMMON += ["--passage_max_len", "16", "--learning_rate", "1e-3", "--logging_steps", "1"]


def test_training_runner_saves_a_loadable_cross_encoder(tmp_path: Path, write_tiny_encoder) -> None:
    encoder = write_tiny_encoder(tmp_path / "enc")  # a plain BertModel: gets a fresh one-label head
    data = write_groups(tmp_path / "train.jsonl", [group(i, scores=True) for i in range(4)])
    out = tmp_path / "out"
    args = ["--model_name_or_path", str(encoder), "--data_path", str(data), "--output_dir", str(out)]
    args += ["--distill_weight", "0.5", "--distill_temperature", "2", "--teacher_temperature", "0.05"]
    args += ["--save_strategy", "steps", "--save_steps", "2"]
    assert train_main(COMMON + args) == 0
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    logged = [line for line in state["log_history"] if "loss" in line]
    assert logged and all(line["step_seconds"] > 0 for line in logged)  # the loss curve with its step times
    for folder in (out, out / "checkpoint-2"):
        ranker = CrossEncoderReranker(model_path=str(folder), device="cpu")
        assert ranker.model.config.architectures == ["BertForSequenceClassification"]
        assert len(ranker.compute_score([("how long do fleas live", "a year"), ("q", "p")])) == 2


def test_training_refuses_bad_data(tmp_path: Path, capsys: pytest.CaptureFixture[str], write_tiny_encoder) -> None:
    encoder = write_tiny_encoder(tmp_path / "enc")
    base = ["--model_name_or_path", str(encoder), "--output_dir", str(tmp_path / "out")]
    bad = write_groups(tmp_path / "bad.jsonl", [group(0), {"query": "q", "pos": [], "neg": ["n"]}])
    assert train_main(COMMON + base + ["--data_path", str(bad)]) == 2
    assert f"{bad}:2: a group with no positive" in capsys.readouterr().err
    plain = write_groups(tmp_path / "plain.jsonl", [group(0)])
    assert train_main(COMMON + base + ["--data_path", str(plain), "--distill_weight", "1"]) == 2
    assert "has no teacher scores" in capsys.readouterr().err
    assert train_main(COMMON + base + ["--data_path", str(plain), "--group_size", "1"]) == 2
    assert "--group_size 1: must be at least 2" in capsys.readouterr().err
    assert train_main(COMMON + base + ["--data_path", str(plain), "--teacher_temperature", "0"]) == 2
    assert "--teacher_temperature 0.0: must be above 0" in capsys.readouterr().err
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_the_recipe_command_parses() -> None:
    """recipes/cross_encoder/train_small.sh's src/train.py flags are all known to the runner and valid."""
    import shlex

    from perank.cli.train import split_family
    from perank.training.runner import get_runner

    script = (REPO / "recipes" / "cross_encoder" / "train_small.sh").read_text()
    body = script.split("$PY src/train.py", 1)[1].split('"$@"', 1)[0]
    argv = [
        ("5" if "MAX" in a or "TOTAL" in a else "x") if "$" in a else a for a in shlex.split(body.replace("\\\n", " "))
    ]
    family, rest = split_family(argv)
    runner = get_runner(family)
    args = runner.parse(rest + ["--use_cpu"])
    runner.validate(args)
    assert family == "cross-encoder" and args.model.model_name_or_path == "all-minilm-l6-v2"
    assert args.data.group_size == 16  # the whole teacher list of a row: its positive and 15 negatives
    assert args.training.distill_weight == 1.0 and args.training.teacher_temperature == 0.05
