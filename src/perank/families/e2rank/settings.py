"""The text settings a trained E2Rank folder was trained with (``e2rank_config.json``), the reranker's defaults.

An embedder trained on ``query-first`` pseudo-queries of 10 candidates, cut at 256 tokens, ranks best when it is
given the same texts. ``src/train.py --family e2rank`` writes its settings beside the adapter in every save, and
the ``e2rank`` reranker, given that folder as ``model_path``, takes each setting from the file unless the option
is passed explicitly. A folder without the file (a published model, the packaged MiniLM) gets the defaults below.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from perank.families.e2rank.prompts import PASSAGE_WORDS
from perank.types import InputError

SETTINGS_FILE = "e2rank_config.json"

#: the reranker's defaults: E2Rank's evaluation (web-search template, 20 candidates, 1,024 words); max_length None
#: is the encoder's own limit
DEFAULTS: dict[str, Any] = {"task": "web-search", "prompt": "e2rank", "k": 20, "passage_words": PASSAGE_WORDS}
#: what a trained folder records: the text settings and the encoder's token limit during training
RECORDED = (*DEFAULTS, "max_length")


def read_settings(model_path: str | Path) -> dict[str, Any]:
    """The settings recorded in ``model_path`` (a local folder), or {} when it records none."""
    path = Path(model_path) / SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: unreadable ({exc})") from exc
    if not isinstance(data, dict) or set(data) - set(RECORDED):
        raise InputError(f"{path}: expected an object with keys among {', '.join(RECORDED)}")
    return data


def write_settings(folder: str | Path, settings: dict[str, Any]) -> None:
    """Record ``settings`` (keys of :data:`RECORDED`) in ``folder``."""
    unknown = set(settings) - set(RECORDED)
    if unknown:
        raise ValueError(f"not E2Rank settings: {sorted(unknown)}")
    (Path(folder) / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")


def resolve_settings(model_path: str, given: dict[str, Any]) -> dict[str, Any]:
    """Each setting: the option when given (not None), else the folder's recorded one, else :data:`DEFAULTS`
    (``max_length``: None, the encoder's own)."""
    recorded = read_settings(model_path)
    out = {}
    for key in RECORDED:
        value = given.get(key)
        out[key] = value if value is not None else recorded.get(key, DEFAULTS.get(key))
    return out
