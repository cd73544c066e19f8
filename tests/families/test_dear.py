"""The dear family: exact prompts per variant, answer reading (ids from 0/1, ``</think>``), fallbacks,
truncation to fit the context, seeded sampling, and loading a LoRA adapter (round trip, missing base)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from perank.backends.hf_lm import HFLanguageModel
from perank.families.dear.prompts import answer, answer_text, card_prompt, cut_passage, repo_messages
from perank.families.dear.reranker import DearReranker
from perank.families.dear.window_budget import fill_cap
from perank.ranking.parsing import parse_permutation
from perank.ranking.registry import build_reranker
from perank.types import Candidate, InputError, Query, Request

CARD_EXPECTED = (
    "I will provide you with 2 passages, each indicated by a number identifier [].\n"
    "Rank the passages based on their relevance to the search query: When did Edison invent the bulb?.\n"
    "\n"
    "[0] Coffee is good for diet\n"
    "[1] Thomas Edison invented the light bulb in 1879\n"
    "\n"
    "Search Query: When did Edison invent the bulb?.\n"
    "Rank the passages above based on their relevance to the search query. Output the ranking as a list of numbers."
)
COT_EXPECTED = (
    "Search Query: q.\n"
    "Rank the 2 passages above based on their relevance to the search query. The passages should be listed in "
    "descending order using identifiers.\n"
    "Please follow the steps below:\n"
    "Step 1. List the information requirements to answer the query.\n"
    "Step 2. For each requirement, find the passages containing that information.\n"
    "Step 3. Rank passages that best cover clear and diverse information. Include all passages.\n"
    "Output format strictly: [2] > [1] > [3] ... Only output the ranking using identifiers; no explanations."
)
DOCS = ["Coffee is good for diet", "Thomas Edison invented the light bulb in 1879"]


def make_request(qid: str, n: int, words: int = 3) -> Request:
    cands = [
        Candidate(docid=f"{qid}-{i}", text=f"passage {i} " + "about fleas " * words, score=0.0, rank=i + 1)
        for i in range(n)
    ]
    return Request(query=Query(qid=qid, text=f"query {qid}"), candidates=cands)


class ScriptedLLM(nn.Module):
    """Stands in for a causal LM: records each prompt and 'generates' ``answer(n)`` for a window of n."""

    def __init__(self, tokenizer, answer=None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.tokenizer = tokenizer
        self.answer = answer or (lambda n: " > ".join(f"[{i}]" for i in range(n, 0, -1)))
        self.config = type("Config", (), {"_name_or_path": "scripted", "max_position_embeddings": 4096})()
        self.generation_config = type("GenConfig", (), {"eos_token_id": tokenizer.eos_token_id})()
        self.prompts: list[str] = []
        self.budgets: list[int] = []

    def generate(self, input_ids, attention_mask, generation_config):
        texts = []
        for row in range(input_ids.shape[0]):
            prompt = self.tokenizer.decode(input_ids[row][attention_mask[row].bool()])
            self.prompts.append(prompt)
            n = int(prompt.split("I will provide you with ")[1].split(" ")[0])
            texts.append(self.answer(n))
        self.budgets.append(generation_config.max_new_tokens)
        new = [self.tokenizer(t, add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id] for t in texts]
        width = max(len(x) for x in new)
        rows = [x + [self.tokenizer.pad_token_id] * (width - len(x)) for x in new]
        return torch.cat([input_ids, torch.tensor(rows)], dim=1)


def scripted(tiny_model, answer=None, **options) -> tuple[DearReranker, ScriptedLLM]:
    llm = ScriptedLLM(tiny_model.tokenizer, answer)
    return DearReranker(lm=HFLanguageModel(llm, tiny_model.tokenizer), **options), llm


# ------------------------------------------------------------------------------------------------ prompts


def test_card_prompt_is_the_model_cards_text() -> None:
    assert card_prompt("When did Edison invent the bulb?", DOCS) == CARD_EXPECTED
    assert cut_passage("card", "x" * 400) == "x" * 300
    assert cut_passage("card", "see [2] here") == "see (2) here"  # no identifier look-alikes


def test_repo_messages_are_the_repositorys() -> None:
    msgs = repo_messages("repo", "q", ["a", "b"])
    assert msgs[:3] == [
        {"role": "system", "content": "You are RankLLM, an assistant that ranks passages by relevance to the query."},
        {
            "role": "user",
            "content": "I will provide you with 2 passages, each indicated by number identifier [].\n"
            "Rank the passages based on their relevance to query: q.",
        },
        {"role": "assistant", "content": "Okay, please provide the passages."},
    ]
    assert msgs[3:7] == [
        {"role": "user", "content": "[1] a"},
        {"role": "assistant", "content": "Received passage [1]."},
        {"role": "user", "content": "[2] b"},
        {"role": "assistant", "content": "Received passage [2]."},
    ]
    assert msgs[7]["content"].startswith("Search Query: q. \nRank the 2 passages above")
    assert msgs[7]["content"].endswith("Only response the ranking results, do not say any word or explain.")
    cot = repo_messages("repo-cot", "q", ["a", "b"])
    assert cot[:7] == msgs[:7] and cot[7] == {"role": "user", "content": COT_EXPECTED}
    words = " ".join(f"w{i}" for i in range(310))
    assert cut_passage("repo", "Title: Content:  " + words) == " ".join(f"w{i}" for i in range(300))


def test_teacher_answers_use_the_variants_numbering() -> None:
    assert answer("repo", [2, 0, 1]) == "[3] > [1] > [2]"
    assert answer("card", [2, 0, 1]) == "[2] > [0] > [1]"


def test_the_reranker_sends_each_variant_as_written(tiny_model) -> None:
    tok = tiny_model.tokenizer
    request = Request(
        query=Query(qid="q", text="When did Edison invent the bulb?"),
        candidates=[Candidate(docid=str(i), text=d, score=0.0, rank=i + 1) for i, d in enumerate(DOCS)],
    )
    ranker, llm = scripted(tiny_model, answer=lambda n: "[1] > [0]", prompt="card")
    (result,) = ranker.rerank([request])
    assert llm.prompts == [tok.decode(tok(CARD_EXPECTED)["input_ids"])] and llm.budgets == [50]
    assert [c.docid for c in result.candidates] == ["1", "0"]
    for variant in ("repo", "repo-cot"):
        ranker, llm = scripted(tiny_model, prompt=variant)
        ranker.rerank([request])
        rendered = tok.apply_chat_template(
            repo_messages(variant, request.query.text, DOCS), tokenize=False, add_generation_prompt=True
        )
        assert llm.prompts == [rendered]
        assert llm.budgets == [6 * 2 + 10 if variant == "repo" else 1024]
    with pytest.raises(InputError, match="unknown prompt"):
        DearReranker(lm=HFLanguageModel(llm, tok), prompt="rankgpt")


# ------------------------------------------------------------------------------------------------ answers


def test_answers_are_read_after_think_and_from_the_variants_first_id(tiny_model) -> None:
    assert answer_text("repo-cot", "<think>[1] > [2] first</think>\n [3] > [1]") == "[3] > [1]"
    assert answer_text("repo-cot", " [2] > [1] ") == "[2] > [1]"
    assert answer_text("card", "x </think> [1]") == "x </think> [1]"
    think = "<think>Step 1: [1] > [2] > [3] needs dates.</think>[3] > [1] > [2]"
    ranker, _ = scripted(tiny_model, answer=lambda n: think, prompt="repo-cot")
    (result,) = ranker.rerank([make_request("q", 3)])
    assert [c.docid for c in result.candidates] == ["q-2", "q-0", "q-1"]
    assert result.stats["parse_repairs_missing"] == 0 and result.stats["parse_fallbacks"] == 0
    # the card numbers from 0 and reads only bracketed ids (a bare "1" is not one)
    ranker, _ = scripted(tiny_model, answer=lambda n: "[2] > [0] > 1", prompt="card")
    (result,) = ranker.rerank([make_request("q", 3)])
    assert [c.docid for c in result.candidates] == ["q-2", "q-0", "q-1"]
    assert result.stats["parse_repairs_missing"] == 1
    assert parse_permutation("[3] > [0] > [3] > 9", 4, first_id=0, bracketed=True) == (
        [3, 0, 1, 2],
        {"repeated": 1, "out_of_range": 0, "missing": 2},
    )
    assert parse_permutation("[3] > [1] > [3] > [9]", 4) == parse_permutation("[3] > [1] > [3] > [9]", 4, first_id=1)


def test_an_answer_without_a_ranking_keeps_the_input_order_and_is_counted(tiny_model) -> None:
    ranker, _ = scripted(tiny_model, answer=lambda n: "I cannot rank these passages.", window_size=4, step=2)
    (result,) = ranker.rerank([make_request("q", 6)])
    assert [c.docid for c in result.candidates] == [f"q-{i}" for i in range(6)]
    assert result.stats["windows"] == 2 and result.stats["parse_fallbacks"] == 2
    scores = [c.score for c in result.candidates]
    assert all(a > b for a, b in zip(scores, scores[1:]))


# ------------------------------------------------------------------------------------------------ fitting


def test_fill_cap_cuts_the_longest_first() -> None:
    assert fill_cap([10, 4, 2], 3) == 7
    assert fill_cap([10, 10], 4) == 8
    assert fill_cap([3, 3], 100) == 0


def test_passages_are_truncated_to_fit_and_counted(tiny_model) -> None:
    ranker, llm = scripted(tiny_model, prompt="repo", max_passage_tokens=5)
    (result,) = ranker.rerank([make_request("q", 3, words=1), make_request("r", 3, words=20)])[1:]
    assert result.stats["truncated_passages"] == 3
    assert "about fleas about fleas about fleas" not in llm.prompts[1]
    # the context limit: only the long passages are cut, and the prompt then fits
    ranker, llm = scripted(tiny_model, prompt="repo", max_length=300)
    request = make_request("q", 3, words=2)
    request.candidates[1] = Candidate(docid="q-1", text="long " * 200, score=0.0, rank=2)
    (result,) = ranker.rerank([request])
    assert result.stats["truncated_passages"] == 1
    assert len(tiny_model.tokenizer(llm.prompts[0])["input_ids"]) <= 300 - (6 * 3 + 10)
    assert "passage 0 about fleas about fleas" in llm.prompts[0]
    ranker, _ = scripted(tiny_model, prompt="repo", max_length=230)  # 215 tokens without passages
    with pytest.raises(InputError, match="does not fit"):
        ranker.rerank([make_request("q", 3)])


# ------------------------------------------------------------------------------------------------ decoding


def test_greedy_by_default_and_seeded_sampling_on_request(tiny_model) -> None:
    opts = {"lm": HFLanguageModel(tiny_model.llm, tiny_model.tokenizer), "max_new_tokens": 12, "prompt": "repo"}
    greedy = build_reranker("dear", **opts)
    assert greedy.describe()["temperature"] == 0.0 and "seed" not in greedy.describe()
    sampled = build_reranker("dear", **opts, temperature=1.5, seed=7)
    assert sampled.describe()["seed"] == 7 and sampled.describe()["top_p"] == 1.0
    requests = [make_request("a", 4), make_request("b", 3)]
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    runs = [[r.candidates for r in sampled.rerank(requests)] for _ in range(2)]
    assert torch.rand(1) == before  # the caller's random state is untouched
    assert runs[0] == runs[1]
    with pytest.raises(InputError):
        build_reranker("dear", **opts, temperature=-1.0)


# ------------------------------------------------------------------------------------------------ LoRA


def write_adapter(base: Path, folder: Path) -> Path:
    """A LoRA adapter over the tiny LLM with non-zero deltas, saved like AutoPeftModelForCausalLM expects."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    llm = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(llm, config)
    peft_model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(base)).save_pretrained(folder)
    return folder


def test_a_lora_adapter_folder_loads_merged(tiny_dirs, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adapter = write_adapter(tiny_dirs.llm, tmp_path / "adapter")
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_dirs.llm)
    ranker = build_reranker("dear", model_path=str(adapter), device="cpu", dtype="float32", max_new_tokens=8)
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_dirs.llm)), str(adapter))
    plain = AutoModelForCausalLM.from_pretrained(str(tiny_dirs.llm))
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        merged, peft_out, base_out = (m.eval()(ids).logits for m in (ranker.lm.model, reference, plain))
    assert torch.allclose(merged, peft_out, atol=1e-4) and not torch.allclose(merged, base_out, atol=1e-4)
    (result,) = ranker.rerank([make_request("q", 4)])
    assert sorted(c.docid for c in result.candidates) == [f"q-{i}" for i in range(4)]
    assert ranker.describe()["model_path"] == str(adapter) and ranker.prompt == "card"


def test_an_adapter_whose_base_is_missing_names_it(tiny_dirs, tmp_path: Path) -> None:
    adapter = write_adapter(tiny_dirs.llm, tmp_path / "adapter")
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(tmp_path / "deleted-base-model")
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match="deleted-base-model"):
        DearReranker(model_path=str(adapter), device="cpu")
