"""The prompt-ranker families (llm-pointwise, llm-pairwise, llm-setwise) and the LM scoring backend.

Exact prompt texts; the backend's reads checked against plain forward passes; the families on the tiny random
LLM of ``conftest.py``; and, on a tiny LLM whose head can only say " A", " B", " C" or " D", that the families'
answers are llm-rankers' (chat template + " Passage:", one greedy token from ``generate``, strip, upper).
"""

from __future__ import annotations

import math

import pytest
import torch

from perank.backends.hf_lm import HFLanguageModel
from perank.families.prompt_rankers import prompts
from perank.ranking.base import make_request
from perank.ranking.choices import Choice
from perank.ranking.registry import build_reranker
from perank.types import InputError

QUERY = "how long do fleas live"
DOCS = [
    "Adult fleas live two to three months on a host.",
    "Paris is the capital of France.",
    "Flea eggs hatch in two days to two weeks.",
    "Concrete floors cost four dollars a square foot.",
    "Without a host an adult flea lives a few days.",
]


def test_prompt_texts_are_llm_rankers() -> None:
    assert prompts.yes_no_prompt("q?", "p.") == (
        "Passage: p.\nQuery: q?\nDoes the passage answer the query? Answer 'Yes' or 'No'"
    )
    assert prompts.qlm_prompt("p.") == "Passage: p.\nPlease write a question based on this passage."
    assert prompts.pairwise_prompt("q", "one", "two") == (
        'Given a query "q", which of the following two passages is more relevant to the query?\n\n'
        'Passage A: "one"\n\nPassage B: "two"\n\nOutput Passage A or Passage B:'
    )
    assert prompts.setwise_prompt("q", ["x", "y", "z"]) == (
        'Given a query "q", which of the following passages is the most relevant one to the query?\n\n'
        'Passage A: "x"\n\nPassage B: "y"\n\nPassage C: "z"\n\n'
        "Output only the passage label of the most relevant passage:"
    )
    assert prompts.ANSWER_PREFIX == " Passage:" and prompts.LABELS == "ABCDEFGHIJKLMNOPQRSTUVW"


@pytest.mark.parametrize(
    "answer,size,pick", [(" A", 2, 0), ("b", 2, 1), (" C ", 2, None), ("C", 3, 2), ("AB", 3, None), ("", 2, None)]
)
def test_answers_are_read_as_llm_rankers_reads_them(answer: str, size: int, pick: int | None) -> None:
    assert prompts.parse_label(answer, size) == pick


@pytest.fixture(scope="module")
def lm(tiny_model):
    return tiny_model.llm, tiny_model.tokenizer


@pytest.fixture(scope="module")
def label_lm(tiny_dirs):
    """The tiny LLM with an untied head that scores only " A", " B", " C", " D", fitted so that on QUERY's
    pairwise prompts it prefers the more relevant passage in both orders: greedy always says a label, and which
    one depends on the prompt."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tiny_dirs.llm)
    llm = LlamaForCausalLM.from_pretrained(tiny_dirs.llm, tie_word_embeddings=False, dtype=torch.float32).eval()
    scorer = HFLanguageModel(llm, tokenizer)
    relevance = [4.0, 0.0, 3.0, 1.0, 2.0]  # of DOCS, for the query QUERY
    ordered = [(i, j) for i in range(5) for j in range(5) if i != j]
    with torch.no_grad():
        states = torch.stack(
            [
                llm.model(torch.tensor([scorer.encode(scorer.render(text, " Passage:"))])).last_hidden_state[0, -1]
                for text in (prompts.pairwise_prompt(QUERY, DOCS[i], DOCS[j]) for i, j in ordered)
            ]
        )
        # logit(" A") - logit(" B") = relevance(first) - relevance(second) on these prompts (hidden 64 > 20 prompts)
        target = torch.tensor([[relevance[i] - relevance[j]] for i, j in ordered])
        w = torch.linalg.lstsq(states, target).solution[:, 0]
        llm.lm_head.weight.data = llm.lm_head.weight.data.clone().zero_()
        torch.manual_seed(0)
        c = torch.randn_like(w)
        c = c * 0.25 / (states @ c).abs().mean()  # " C" wins now and then: an answer that names neither passage
        rows = {" A": w / 2, " B": -w / 2, " C": c, " D": -c}
        for label, row in rows.items():
            (token,) = tokenizer.encode(label, add_special_tokens=False)
            llm.lm_head.weight[token] = row
    return llm, tokenizer


def test_scorer_padding_changes_nothing_but_rounding(lm) -> None:
    scorer = HFLanguageModel(*lm)
    short, long = scorer.encode(scorer.render("fleas")), scorer.encode(scorer.render(" ".join(DOCS)))
    together = scorer.next_token_logits([short, long])
    assert torch.allclose(together[0], scorer.next_token_logits([short])[0], atol=1e-4)
    assert torch.allclose(together[1], scorer.next_token_logits([long])[0], atol=1e-4)
    assert scorer.greedy_next_tokens([short, long]) == together.argmax(-1).tolist()
    restricted = scorer.next_token_logits([short, long], [5, 7])
    assert torch.allclose(restricted, together[:, [5, 7]])


def test_continuation_logprobs_are_the_sum_of_token_logprobs(lm) -> None:
    llm, tokenizer = lm
    scorer = HFLanguageModel(llm, tokenizer)
    prompt, query = scorer.encode(scorer.render(prompts.qlm_prompt(DOCS[0]))), scorer.encode(QUERY, special=False)
    with torch.no_grad():
        logp = torch.log_softmax(llm(torch.tensor([prompt + query])).logits[0].float(), -1)
    manual = sum(float(logp[len(prompt) - 1 + t, tok]) for t, tok in enumerate(query))
    other = scorer.encode(scorer.render("x"))
    got = scorer.loglik([prompt, other], [query, query[:1]])
    assert got[0] == pytest.approx(manual, abs=1e-3)
    assert got[1] < 0


def test_pointwise_scores_are_p_yes_and_query_likelihood(lm) -> None:
    llm, tokenizer = lm
    scorer = HFLanguageModel(llm, tokenizer)
    yes, no = scorer.token_id("Yes"), scorer.token_id("No")
    ranker = build_reranker("llm-pointwise", lm=HFLanguageModel(llm, tokenizer))
    row = scorer.encode(scorer.render(prompts.yes_no_prompt(QUERY, DOCS[2])))
    with torch.no_grad():
        last = llm(torch.tensor([row])).logits[0, -1].float()
    expected = float(torch.softmax(last[[yes, no]], -1)[0])
    assert ranker.compute_score((QUERY, DOCS[2]))[0] == pytest.approx(expected, abs=1e-5)
    assert ranker.compute_score((QUERY, DOCS[2]), normalize=True)[0] == pytest.approx(expected, abs=1e-5)

    qlm = build_reranker("pointwise", method="qlm", lm=HFLanguageModel(llm, tokenizer))
    prompt = scorer.encode(scorer.render(prompts.qlm_prompt(DOCS[2])))
    expected_qlm = scorer.loglik([prompt], [scorer.encode(QUERY, special=False)])[0]
    assert qlm.compute_score((QUERY, DOCS[2]))[0] == pytest.approx(expected_qlm, abs=1e-4)
    assert qlm.compute_score((QUERY, DOCS[2]), normalize=True)[0] == pytest.approx(math.exp(expected_qlm), rel=1e-4)
    result = qlm.rank(QUERY, DOCS)
    assert result.stats["llm_calls"] == 5 and result.stats["tokens_generated"] == 0
    assert result.stats["tokens_processed"] > 5 * len(scorer.encode(QUERY, special=False))


@pytest.mark.parametrize("name", ["llm-pointwise", "llm-pairwise", "llm-setwise"])
def test_truncated_passages_are_counted_and_cut(name: str, lm) -> None:
    llm, tokenizer = lm
    ranker = build_reranker(name, lm=HFLanguageModel(llm, tokenizer), max_passage_tokens=4)
    long = [d for d in DOCS if len(tokenizer.tokenize(d)) > 4]
    assert ranker.rank(QUERY, DOCS + ["fleas"]).stats["truncated_passages"] == len(long) == 5
    assert ranker.cut(DOCS[1]) == ("Paris is the capital", True)
    full = build_reranker(name, lm=HFLanguageModel(llm, tokenizer), max_passage_tokens=None)
    assert full.rank(QUERY, DOCS).stats["truncated_passages"] == 0


def test_pairwise_allpair_accounting(lm) -> None:
    llm, tokenizer = lm
    ranker = build_reranker("llm-pairwise", method="allpair", lm=HFLanguageModel(llm, tokenizer), batch_size=5)
    scorer = HFLanguageModel(llm, tokenizer)
    stats = ranker.rank(QUERY, DOCS[:4]).stats
    expected_tokens = sum(
        len(scorer.encode(scorer.render(prompts.pairwise_prompt(QUERY, DOCS[i], DOCS[j]), " Passage:")))
        for i in range(4)
        for j in range(4)
        if i != j
    )
    assert stats["llm_calls"] == 12 and stats["tokens_generated"] == 12
    assert stats["tokens_processed"] == expected_tokens
    assert stats["latency_s"] > 0


def llm_rankers_answer(llm, tokenizer, text: str) -> str:
    """What llm-rankers' decoder-only compare() reads for one prompt (its steps, written out)."""
    conversation = [{"role": "user", "content": text}]
    prompt = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True) + " Passage:"
    input_ids = tokenizer(prompt, return_tensors="pt").input_ids
    out = llm.generate(input_ids, do_sample=False, max_new_tokens=1, pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0][input_ids.shape[1] :], skip_special_tokens=True).strip().upper()


def test_pairwise_and_setwise_answers_are_llm_rankers(label_lm) -> None:
    llm, tokenizer = label_lm
    pairwise = build_reranker("llm-pairwise", lm=HFLanguageModel(llm, tokenizer), max_passage_tokens=None)
    pairs = [Choice(QUERY, (DOCS[i], DOCS[j])) for i in range(5) for j in range(5) if i != j]
    picks = pairwise.choose_batch(pairs).picks
    expected = [llm_rankers_answer(llm, tokenizer, prompts.pairwise_prompt(QUERY, *c.passages)) for c in pairs]
    assert picks == [prompts.parse_label(a, 2) for a in expected]
    assert {0, 1} <= set(picks)  # the test model prefers either position

    setwise = build_reranker("llm-setwise", lm=HFLanguageModel(llm, tokenizer), max_passage_tokens=None)
    sets = [Choice(QUERY, tuple(DOCS[s : s + 4])) for s in range(2)] + [Choice("fleas", (DOCS[4], DOCS[0], DOCS[1]))]
    answers = [llm_rankers_answer(llm, tokenizer, prompts.setwise_prompt(c.query, c.passages)) for c in sets]
    got = setwise.choose_batch(sets).picks
    assert got == [prompts.parse_label(a, len(c.passages)) for a, c in zip(answers, sets)]


@pytest.mark.parametrize(
    "name,options,top",
    [
        ("llm-pairwise", {"method": "bubblesort"}, ["0", "2", "4"]),
        ("llm-pairwise", {"method": "heapsort"}, ["0", "2", "4"]),
        ("llm-pairwise", {"method": "allpair"}, ["0", "2", "4", "3", "1"]),
        ("llm-setwise", {"num_child": 2}, None),
    ],
)
def test_families_rank_with_a_model_that_has_preferences(name: str, options: dict, top: list | None, label_lm) -> None:
    llm, tokenizer = label_lm
    ranker = build_reranker(name, lm=HFLanguageModel(llm, tokenizer), k=3, **options)
    requests = [make_request(QUERY, DOCS, "a"), make_request("flea eggs", DOCS[::-1], "b")]
    together = ranker.rerank(requests)
    alone = [ranker.rerank([r])[0] for r in requests]
    assert [[c.docid for c in r.candidates] for r in together] == [[c.docid for c in r.candidates] for r in alone]
    assert any([c.docid for c in r.candidates] != [str(i) for i in range(5)] for r in together)
    if top is not None:  # the model was fitted to prefer the more relevant of QUERY's passages in both orders
        assert [c.docid for c in together[0].candidates][: len(top)] == top


def test_describe_and_options(lm) -> None:
    llm, tokenizer = lm
    info = build_reranker(
        "setwise", lm=HFLanguageModel(llm, tokenizer), method="bubblesort", num_child=2, k=7
    ).describe()
    assert info["reranker"] == "llm-setwise" and info["method"] == "bubblesort"
    assert (info["num_child"], info["k"], info["max_passage_tokens"]) == (2, 7, 128)
    assert info["model_path"] and info["chat_template"] is True
    assert build_reranker("pairwise", lm=HFLanguageModel(llm, tokenizer)).describe()["method"] == "heapsort"
    with pytest.raises(InputError, match="unknown method 'listwise'"):
        build_reranker("llm-pointwise", lm=HFLanguageModel(llm, tokenizer), method="listwise")
    with pytest.raises(InputError, match="max_passage_tokens"):
        build_reranker("llm-pairwise", lm=HFLanguageModel(llm, tokenizer), max_passage_tokens=0)
    with pytest.raises(InputError, match="num_child"):
        build_reranker("llm-setwise", lm=HFLanguageModel(llm, tokenizer), num_child=40)
    with pytest.raises(InputError, match="no option 'llm'"):
        build_reranker("llm-setwise", llm=llm)
    with pytest.raises(InputError, match="k"):
        build_reranker("llm-pairwise", lm=HFLanguageModel(llm, tokenizer), k="ten")
