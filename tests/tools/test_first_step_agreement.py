"""``perank first-step-agreement``: Spearman of a checkpoint's first decoding step with the encoder cosine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from perank.io import write_retrieval_results
from perank.tools.analysis.first_step_agreement import main, spearman


def test_spearman_of_orders() -> None:
    a = torch.tensor([0.1, 0.5, 0.3, 0.9])
    assert spearman(a, a * 10 + 1) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(a, torch.tensor([0.2, 0.1, 0.4, 0.3])) == pytest.approx(0.0)  # 1 - 6 * 10 / (4 * 15)


def test_script_on_tiny_checkpoint(tiny_checkpoint: Path, tmp_path: Path, topic_request) -> None:
    data = tmp_path / "cands.jsonl"
    write_retrieval_results(data, [topic_request("a", 6), topic_request("b", 25), topic_request("c", 1)])
    out = tmp_path / "agreement.json"
    assert main(["--model-path", str(tiny_checkpoint), "--retrieval-results", str(data), "--output", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["queries"] == 2  # a one-passage window has no order to compare
    assert set(report["per_query"]) == {"a", "b"}
    assert all(-1.0 <= v <= 1.0 for v in report["per_query"].values())
    assert main(["--model-path", str(tmp_path / "nothing"), "--retrieval-results", str(data)]) == 2
