"""Fusion (teacher fusion, reordering candidates by a run: ``perank fuse`` / ``perank reorder``) and
``perank runs-table``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.paths import REPO
from perank.fusion import fuse, normalised, ranks_of, reorder
from perank.tools.analysis.runs_table import row
from perank.types import Candidate, InputError, Query, Request


def test_rrf_sums_weighted_reciprocal_ranks_and_fills_missing_with_worst_rank() -> None:
    a = {"q": {"d1": 3.0, "d2": 2.0}}
    b = {"q": {"d2": 9.0, "d3": 1.0}}
    out = fuse([a, b], [1.0, 0.5], "rrf", k=60)["q"]
    assert out["d1"] == pytest.approx(1 / 61 + 0.5 / 63)  # missing from b: rank len(b)+1 = 3
    assert out["d2"] == pytest.approx(1 / 62 + 0.5 / 61)
    assert out["d3"] == pytest.approx(1 / 63 + 0.5 / 62)


def test_interpolation_normalises_each_run() -> None:
    assert normalised({"x": 2.0, "y": 4.0}) == {"x": 0.0, "y": 1.0}
    out = fuse([{"q": {"x": 2.0, "y": 4.0}}, {"q": {"x": 10.0, "y": 0.0}}], [0.25, 0.75], "interp")["q"]
    assert out == {"x": pytest.approx(0.75), "y": pytest.approx(0.25)}


def test_ranks_break_ties_by_docid_and_fusion_needs_shared_queries() -> None:
    assert ranks_of({"b": 1.0, "a": 1.0, "c": 2.0}) == {"c": 1, "a": 2, "b": 3}
    with pytest.raises(InputError, match="share no query"):
        fuse([{"q1": {"d": 1.0}}, {"q2": {"d": 1.0}}], [1, 1], "rrf")


def test_reorder_takes_the_run_order_and_names_a_missing_candidate() -> None:
    cands = [Candidate(docid=d, text=d.upper(), score=0.0, rank=i + 1) for i, d in enumerate(["a", "b", "c"])]
    request = Request(query=Query(qid="q", text="t"), candidates=cands)
    (out,) = reorder([request], {"q": {"a": 0.1, "b": 0.9, "c": 0.5}})
    assert [c.docid for c in out.candidates] == ["b", "c", "a"]
    assert [c.rank for c in out.candidates] == [1, 2, 3] and out.candidates[0].text == "B"
    with pytest.raises(InputError, match="not in the run, e.g. c"):
        reorder([request], {"q": {"a": 0.1, "b": 0.9}})


def test_cli_tunes_on_given_qrels_and_writes_a_run(tmp_path: Path) -> None:
    a, b, qrels = tmp_path / "a.trec", tmp_path / "b.trec", tmp_path / "qrels"
    a.write_text("q Q0 d1 1 2 a\nq Q0 d2 2 1 a\n")
    b.write_text("q Q0 d2 1 2 b\nq Q0 d1 2 1 b\n")
    qrels.write_text("q 0 d2 1\n")
    out = subprocess.run(
        [sys.executable, "-m", "perank", "fuse", "--method", "interp", str(a), str(b)]
        + ["--tune-qrels", str(qrels), "-o", str(tmp_path / "f.trec")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "best w=0.00" in out  # only run b ranks the relevant d2 first (ties keep the smallest weight)
    assert (tmp_path / "f.trec").read_text().splitlines()[0].split()[2] == "d2"


def test_runs_table_row_prefers_llm_calls_then_windows(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    means = {"windows": 9, "tokens_processed": 2616.4, "tokens_generated": 180}
    accounting = {"means": means, "medians": {"latency_s": 8.8}}
    path.write_text(json.dumps({"num_queries": 43, "metrics": {"ndcg_cut_10": 0.52456}, "accounting": accounting}))
    assert row("pe-rank", path) == ["pe-rank", "43", "0.5246", "9.0", "2,616", "180", "8.80"]
    path.write_text("{}")
    with pytest.raises(InputError, match="not a metrics JSON"):
        row("x", path)


def test_perank_fuse_writes_a_scored_run_with_summed_cost_that_compare_takes(tmp_path: Path, capsys) -> None:
    from perank.cli.main import main as perank
    from perank.io import read_trec_run

    bm25 = read_trec_run(REPO / "data" / "msmarco-passage" / "trec_results_dl19.txt")
    runs = []
    for name, latency, flip in (("a", 1.0, False), ("b", 2.5, True)):
        path = tmp_path / f"eval_dl19_{name}_top100.txt"
        lines = []
        for qid, scores in bm25.items():
            order = sorted(scores, key=lambda d: -scores[d])
            order = order[:10][::-1] + order[10:] if flip else order
            lines += [f"{qid} Q0 {d} {i + 1} {100 - i} {name}\n" for i, d in enumerate(order)]
        path.write_text("".join(lines))
        per_query = {q: {"latency_s": latency, "tokens_processed": 10} for q in bm25}
        meta = {"dataset": "dl19", "topk": 100, "accounting": {"per_query": per_query}}
        path.with_name(path.name + ".metrics.json").write_text(json.dumps(meta))
        runs.append(str(path))
    assert perank(["fuse", *runs, "--output-dir", str(tmp_path)]) == 0
    fused = tmp_path / "eval_dl19_rrf-a-b_top100.txt"
    recorded = json.loads(fused.with_name(fused.name + ".metrics.json").read_text())
    assert recorded["reranker"]["reranker"] == "fusion" and recorded["reranker"]["inputs"] == runs
    assert (
        recorded["dataset"] == "dl19" and recorded["num_queries"] == 43 and 0 < recorded["metrics"]["ndcg_cut_10"] < 1
    )
    assert recorded["accounting"]["medians"]["latency_s"] == pytest.approx(3.5)  # a fused query costs both runs
    assert recorded["accounting"]["totals"]["tokens_processed"] == 43 * 20
    assert fused.read_text().split()[5] == "rrf-a-b"  # the tag is the run's name
    capsys.readouterr()
    assert perank(["compare", *runs, str(fused), "--dataset", "dl19", "-o", str(tmp_path / "cmp")]) == 0
    out = json.loads((tmp_path / "cmp.json").read_text())
    assert [s["name"] for s in out["systems"]] == ["a", "b", "rrf-a-b"]
    assert out["systems"][2]["cost"]["median_s"] == pytest.approx(3.5)
    assert out["systems"][2]["means"]["ndcg@10"] == pytest.approx(recorded["metrics"]["ndcg_cut_10"])
