"""Chat conversations as training sequences, with the loss on the assistant turns only.

Rendering uses the LLM's own chat template, and each assistant turn's prompt part is rendered exactly as at
inference (``add_generation_prompt=True``), so training and decoding see the same tokens. Tokens outside the
assistant targets get :data:`IGNORE_INDEX` as their label (what ``cross_entropy`` skips).
"""

from __future__ import annotations

from typing import Any

IGNORE_INDEX = -100


def check_messages(obj: Any, key: str) -> list[dict[str, str]]:
    """``obj[key]`` as a list of chat turns with at least one assistant turn; ValueError saying what is wrong."""
    msgs = obj.get(key)
    if not isinstance(msgs, list) or not msgs:
        raise ValueError(f"'{key}' must be a non-empty list of chat turns")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise ValueError(f"'{key}' turn {i} must be an object with string 'role' and 'content'")
    if not any(m["role"] == "assistant" for m in msgs):
        raise ValueError(f"'{key}' has no assistant turn to train on")
    return msgs


def render_segments(tokenizer: Any, messages: list[dict[str, str]]) -> list[tuple[str, bool]]:
    """Split a rendered conversation into (text, is_assistant_target) pieces, in order.

    Each assistant turn's target is the text added by rendering it, after the generation prompt that
    precedes it; everything else (system, user, the generation prompt itself) is context.
    """
    pieces: list[tuple[str, bool]] = []
    done = ""
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant":
            continue
        prompt = tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if not prompt.startswith(done) or not full.startswith(prompt):
            raise ValueError("the chat template does not render conversations prefix-consistently")
        pieces.append((prompt[len(done) :], False))
        pieces.append((full[len(prompt) :], True))
        done = full
    rest = tokenizer.apply_chat_template(messages, tokenize=False)
    if len(rest) > len(done):
        pieces.append((rest[len(done) :], False))
    return pieces


def tokenize_segments(tokenizer: Any, pieces: list[tuple[str, bool]]) -> tuple[list[int], list[bool]]:
    """Token ids and a per-token "is target" flag (special tokens of the template come from its text)."""
    ids: list[int] = []
    target: list[bool] = []
    for text, is_target in pieces:
        toks = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids += toks
        target += [is_target] * len(toks)
    return ids, target


def masked_labels(ids: list[int], target: list[bool]) -> list[int]:
    """Labels for next-token cross-entropy: the token where it is a target, IGNORE_INDEX elsewhere."""
    return [t if is_t else IGNORE_INDEX for t, is_t in zip(ids, target)]
