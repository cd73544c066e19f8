"""The prompt texts are PE-Rank's, character for character (REFERENCE.md, "Prompts")."""

from __future__ import annotations

import pytest

from perank.families.listwise_text import prompts as text_prompts
from perank.families.pe_rank.prompts import PLACEHOLDER, RANK_TOKEN, PromptSpec, answer_prefix, messages, user_text
from perank.ranking.prompting import clean_passage

EMB_PREFIX = (
    "I will provide you with 2 passages, each with a special token representing the passage enclosed in [], "
    "followed by original text.\nRank the passages based on their relevance to the search query: what is x.\n"
)
EMB_POST = (
    "Search Query: what is x.\nRank the 2 relatively ordered passages above based on their relevance to the "
    "search query, output the ranking in descending order. Only output the 2 unique special token in the ranking."
    "\n\n"
)


def test_embedding_prompt_exact():
    text = user_text(PromptSpec("embedding"), " what is x ", ["first", "second"])
    lines = "Passage 1: [<PLACEHOLDER>]\n\nPassage 2: [<PLACEHOLDER>]\n\n"
    assert text == EMB_PREFIX + lines + EMB_POST


def test_text_embedding_prompt_exact():
    text = user_text(PromptSpec("text-embedding"), "what is x", ["  first [1] ", "second"])
    lines = "Passage 1: [<PLACEHOLDER>] first (1)\n\nPassage 2: [<PLACEHOLDER>] second\n\n"
    assert text == EMB_PREFIX + lines + EMB_POST


def test_text_prompt_exact():
    text = text_prompts.user_text("text", "what is x", ["first", "second"])
    expected = (
        "I will provide you with 2 passages.\nRank the passages based on their relevance to the search query: "
        "what is x.\nPassage 1: first\n\nPassage 2: second\n\nSearch Query: what is x.\nRank the 2 relatively "
        "ordered passages above based on their relevance to the search query, output the ranking in descending "
        "order. The output format should be [] > [] > ..., e.g., [4] > [2] > ..., Only respond with the ranking "
        "results with 2 unique numbers, do not say anything else or explain.\n\n"
    )
    assert text == expected


def test_rankgpt_variant_numbers_passages():
    text = text_prompts.user_text("rankgpt", "q", ["a", "b"])
    assert "[1] a\n[2] b\n" in text and PLACEHOLDER not in text


def test_query_embedding_token_comes_after_the_passages():
    text = user_text(PromptSpec("embedding", query_embedding=True), "q", ["a", "b", "c"])
    assert text.count(PLACEHOLDER) == 4
    assert text.rindex(PLACEHOLDER) > text.index("Search Query: q")


def test_clean_passage():
    assert clean_passage("  see [12] and [a]  ") == "see (12) and [a]"


def test_messages_and_ranking_turn():
    msgs = messages(PromptSpec("embedding"), "q", ["a", "b"], ranking_turn=True)
    assert [m["role"] for m in msgs] == ["user", "assistant"]
    assert msgs[1]["content"] == RANK_TOKEN * 2


def test_bad_specs():
    with pytest.raises(ValueError):
        PromptSpec("nope")
    with pytest.raises(ValueError):
        PromptSpec("text", query_embedding=True)


def test_rendered_with_the_llm_chat_template(tiny_model):
    """One placeholder TOKEN per passage after tokenization, and the generation prompt at the end."""
    tok = tiny_model.tokenizer
    rendered = tok.apply_chat_template(
        messages(PromptSpec("embedding"), "q", ["a"] * 5), tokenize=False, add_generation_prompt=True
    )
    assert rendered.endswith("<|im_start|>assistant\n")
    ids = tok(rendered, add_special_tokens=False)["input_ids"]
    assert ids.count(tiny_model.placeholder_id) == 5


def test_query_embedding_in_the_answer():
    spec = PromptSpec("embedding", query_embedding=True, query_embedding_position="answer")
    text = user_text(spec, "q", ["a", "b", "c"])
    assert text.count(PLACEHOLDER) == 3  # only the passages: the query's token opens the answer
    assert answer_prefix(spec) == PLACEHOLDER
    assert answer_prefix(PromptSpec("embedding", query_embedding=True)) == ""
    msgs = messages(spec, "q", ["a", "b"], ranking_turn=True)
    assert msgs[-1] == {"role": "assistant", "content": PLACEHOLDER + RANK_TOKEN * 2}
    with pytest.raises(ValueError, match="query-embedding position"):
        PromptSpec("embedding", query_embedding=True, query_embedding_position="end")


def test_prompt_without_the_query_text():
    spec = PromptSpec("embedding", query_embedding=True, query_embedding_position="answer", query_text=False)
    text = user_text(spec, "a distinctive query", ["a", "b"])
    assert "distinctive" not in text
    assert text == user_text(PromptSpec("embedding"), "", ["a", "b"])  # the template's words stay
    assert answer_prefix(spec) == PLACEHOLDER  # the query reaches the model only as its embedding
    with pytest.raises(ValueError, match="query-embedding token"):
        PromptSpec("embedding", query_text=False)
