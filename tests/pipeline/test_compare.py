"""``perank compare``: the statistics checked against scipy and by hand, the per-query measures against
pytrec_eval, the systems' names and checks, cost from the accounting, order sensitivity, and the written report."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from helpers.paths import REPO
from perank.cli.main import main as perank_main
from perank.compare.cli import main
from perank.compare.cost import cost_of
from perank.compare.measures import parse_measures, per_query_values
from perank.compare.plot import pareto_front
from perank.compare.stats import holm, kendall_tau, paired_test
from perank.io import read_qrels, read_trec_run
from perank.metrics import evaluate_run
from perank.runs import label_of_run_file
from perank.types import InputError

DATA = REPO / "data" / "msmarco-passage"
QRELS = DATA / "qrels.dl19-passage.txt"
BM25 = DATA / "trec_results_dl19.txt"


def write_run(path: Path, run: dict[str, dict[str, float]], accounting: dict | None = None) -> Path:
    """A TREC run (best first) and, with ``accounting``, a metrics JSON beside it as evaluate.py writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for qid, scores in run.items():
        for rank, doc in enumerate(sorted(scores, key=lambda d: -scores[d]), start=1):
            lines.append(f"{qid} Q0 {doc} {rank} {scores[doc]!r} t\n")
    path.write_text("".join(lines))
    if accounting is not None:
        meta = {"dataset": "dl19", "topk": 100, "accounting": accounting}
        path.with_name(path.name + ".metrics.json").write_text(json.dumps(meta))
    return path


def top10_reversed(run: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Each query's first ten passages in reverse order, the rest as they were."""
    out = {}
    for qid, scores in run.items():
        order = sorted(scores, key=lambda d: -scores[d])
        order = order[:10][::-1] + order[10:]
        out[qid] = {d: float(len(order) - i) for i, d in enumerate(order)}
    return out


def reversed_run(run: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Each query's passages in reverse order."""
    return {
        qid: {d: float(i) for i, d in enumerate(sorted(scores, key=lambda d: -scores[d]))}
        for qid, scores in run.items()
    }


def accounting(latencies: dict[str, float], **per_query: float) -> dict:
    return {"per_query": {q: {"latency_s": s, **per_query} for q, s in latencies.items()}}


def compare(tmp_path: Path, *args: str) -> dict:
    assert main([*args, "-o", str(tmp_path / "cmp" / "out")]) == 0
    return json.loads((tmp_path / "cmp" / "out.json").read_text())


# --------------------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------------------


def test_t_test_p_value_of_a_fixed_pair_of_dl19_runs_matches_scipy(tmp_path: Path) -> None:
    """BM25 against BM25 with each query's top ten reversed: the p-value compare reports is scipy's ttest_rel on
    pytrec_eval's per-query nDCG@10 (and the number recorded here: 0.0026686)."""
    import pytrec_eval

    bm25 = read_trec_run(BM25)
    flipped = write_run(tmp_path / "eval_dl19_flipped_top100.txt", top10_reversed(bm25))
    out = compare(tmp_path, str(BM25), str(flipped), "--dataset", "dl19")
    (row,) = [s for s in out["systems"] if s["name"] == "flipped"]
    reported = row["vs_baseline"]["ndcg@10"]

    evaluator = pytrec_eval.RelevanceEvaluator(read_qrels(QRELS), {"ndcg_cut.10"})
    a, b = evaluator.evaluate(bm25), evaluator.evaluate(top10_reversed(bm25))
    qids = sorted(a)
    x = np.array([a[q]["ndcg_cut_10"] for q in qids])
    y = np.array([b[q]["ndcg_cut_10"] for q in qids])
    expected = stats.ttest_rel(y, x)
    assert reported["p"] == pytest.approx(expected.pvalue, rel=1e-12)
    assert reported["p"] == pytest.approx(0.0026686409908562667, rel=1e-9)
    assert reported["p_holm"] == reported["p"]  # one comparison: Holm changes nothing
    assert reported["significant"] is True
    # the t statistic by hand gives the same p
    d = y - x
    t = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
    assert reported["p"] == pytest.approx(2 * stats.t.sf(abs(t), len(d) - 1), rel=1e-9)
    assert reported["mean_delta"] == pytest.approx(-0.0596854551354965, abs=1e-12)
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    assert reported["ci"] == pytest.approx([d.mean() - half, d.mean() + half], abs=1e-12)
    assert reported["wins"] + reported["ties"] + reported["losses"] == 43 == out["num_queries"]
    assert row["means"]["ndcg@10"] == pytest.approx(
        evaluate_run(top10_reversed(bm25), read_qrels(QRELS))["ndcg_cut_10"]
    )


def test_randomization_test_is_fishers_exact_sign_flip_test_on_few_queries() -> None:
    rng = np.random.default_rng(3)
    base = rng.random(11)
    system = base + rng.normal(0.04, 0.1, 11)
    d = system - base
    flips = np.array(list(itertools.product([1, -1], repeat=11)))
    exact = np.mean(np.abs((flips * d).mean(axis=1)) >= abs(d.mean()) - 1e-12)
    result = paired_test(system, base, "randomization", resamples=5000)  # 2**11 = 2048 flips: enumerated
    assert result.p_value == pytest.approx(exact, abs=1e-12)
    assert paired_test(system, base, "t").p_value == pytest.approx(stats.ttest_rel(system, base).pvalue)


def test_holm_multiplies_by_the_remaining_count_and_stays_monotone() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.2, 0.01, 0.6, 0.01]) == pytest.approx([0.4, 0.04, 0.6, 0.04])
    assert holm([0.5]) == [0.5] and holm([0.7, 0.9]) == [1.0, 1.0]


def test_wins_ties_losses_and_degenerate_differences() -> None:
    base = [0.5, 0.5, 0.2, 0.9]
    result = paired_test([0.6, 0.5 + 1e-12, 0.1, 0.95], base)
    assert (result.wins, result.ties, result.losses) == (2, 1, 1)
    same = paired_test(base, base)
    assert (same.p_value, same.ci_low, same.ci_high, same.ties) == (1.0, 0.0, 0.0, 4)
    shifted = paired_test([b + 0.1 for b in base], base)
    assert shifted.p_value == 0.0 and shifted.mean_delta == pytest.approx(0.1) and shifted.wins == 4


def test_kendall_tau_over_shared_passages() -> None:
    first = {"a": 3.0, "b": 2.0, "c": 1.0, "x": 0.5}
    assert kendall_tau(first, {"a": 1.0, "b": 2.0, "c": 3.0}) == pytest.approx(-1.0)
    assert kendall_tau(first, {"a": 9.0, "b": 8.0, "c": 7.0, "y": 1.0}) == pytest.approx(1.0)
    assert kendall_tau(first, {"a": 1.0}) is None


# --------------------------------------------------------------------------------------------------
# measures, names, cost, plot
# --------------------------------------------------------------------------------------------------


def test_measures_are_pytrec_evals_and_mrr_cuts_the_run() -> None:
    qrels = {"q": {"rel": 1}}
    run = {"q": {f"d{i}": float(100 - i) for i in range(10)} | {"rel": 89.5}}  # the relevant passage is 11th
    values = per_query_values(run, qrels, parse_measures(["mrr@10", "mrr@11", "ndcg@10", "recall@100"]))
    assert values["mrr@10"] == {"q": 0.0}
    assert values["mrr@11"]["q"] == pytest.approx(1 / 11)
    assert values["ndcg@10"]["q"] == 0.0 and values["recall@100"]["q"] == 1.0
    assert [m.label for m in parse_measures(["NDCG@5", "map@100", "p@5"])] == ["nDCG@5", "MAP@100", "P@5"]
    with pytest.raises(InputError, match="expected NAME@K"):
        parse_measures(["ndcg10"])


def test_system_names_come_from_run_file_names() -> None:
    assert label_of_run_file("r/eval_dl19_dense-all-MiniLM-L6-v2_top100.txt") == "dense-all-MiniLM-L6-v2"
    assert label_of_run_file("eval_dl19_pe-rank+window_size-10_top20.txt") == "pe-rank+window_size-10"
    assert label_of_run_file("eval_my_cands_identity_top100.txt", dataset="my_cands") == "identity"
    assert label_of_run_file("eval_my_cands_identity_top100.txt") == "cands_identity"
    assert label_of_run_file("data/trec_results_dl19.txt") == "trec_results_dl19"
    assert label_of_run_file("bm25.trec") == "bm25"


def test_cost_is_taken_over_the_compared_queries_and_unknown_is_none() -> None:
    acc = {
        "per_query": {str(i): {"latency_s": float(i), "tokens_processed": 10 * i, "windows": 9} for i in range(1, 21)},
        "means": {"llm_calls": 123.0},
        "peak_memory_mb": {"rss": 2048.0},
    }
    cost = cost_of(acc, {str(i) for i in range(1, 11)})
    assert cost.median_s == 5.5 and cost.p95_s == pytest.approx(np.percentile(range(1, 11), 95))
    assert cost.prompt_tokens == 55 and cost.generated_tokens is None
    assert cost.llm_calls == 123.0  # the recorded mean when queries carry no llm_calls of their own
    assert cost.peak_rss_mb == 2048.0 and cost.peak_cuda_mb is None
    assert cost_of({"per_query": {"1": {"latency_s": 1, "windows": 9}}}, {"1"}).llm_calls == 9
    assert all(v is None for v in cost_of(None, {"1"}).as_dict().values())


def test_pareto_front_keeps_what_nothing_beats_on_both() -> None:
    points = [("slow-best", 10.0, 0.7), ("fast-weak", 0.1, 0.5), ("dominated", 5.0, 0.45), ("mid", 2.0, 0.65)]
    assert pareto_front(points) == ["fast-weak", "mid", "slow-best"]
    assert pareto_front([("a", 1.0, 0.5), ("b", 1.0, 0.5), ("c", 2.0, 0.5)]) == ["a", "b"]


# --------------------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------------------


def test_report_files_cost_columns_and_per_query_view(tmp_path: Path, capsys) -> None:
    bm25 = read_trec_run(BM25)
    qids = list(bm25)
    runs = tmp_path / "runs"
    write_run(runs / "eval_dl19_base_top100.txt", bm25, accounting(dict.fromkeys(qids, 0.001)))
    slow = accounting({q: 2.0 + i for i, q in enumerate(qids)}, tokens_processed=2600, tokens_generated=180, windows=9)
    write_run(runs / "eval_dl19_flipped_top100.txt", top10_reversed(bm25), slow)
    other = tmp_path / "elsewhere.trec"
    write_run(other, reversed_run(bm25))  # a TREC file from elsewhere: no accounting
    out = compare(tmp_path, str(runs / "eval_dl19_*"), str(other), "--dataset", "dl19", "--per-query")
    printed = capsys.readouterr().out
    assert [s["name"] for s in out["systems"]] == ["base", "flipped", "elsewhere"]
    flipped = out["systems"][1]["cost"]
    assert flipped["median_s"] == pytest.approx(np.median([2.0 + i for i in range(43)]))
    assert flipped["prompt_tokens"] == 2600 and flipped["llm_calls"] == 9
    assert all(v is None for v in out["systems"][2]["cost"].values())
    table = [line for line in printed.splitlines() if line.startswith("| elsewhere ")]
    assert table and table[0].rstrip(" |").endswith("| - | - | - | - | - | -")
    assert "| base (baseline) |" in printed and "†" in printed
    files = {p.name for p in (tmp_path / "cmp").iterdir()}
    assert files == {"out.md", "out.json", "out.html", "out.png", "out.per_query.tsv"}
    html = (tmp_path / "cmp" / "out.html").read_text()
    assert "data:image/png;base64," in html and "how long is life cycle of flea" in html
    tsv = (tmp_path / "cmp" / "out.per_query.tsv").read_text().splitlines()
    assert tsv[0].split("\t")[:5] == ["qid", "query", "base", "flipped", "elsewhere"]
    spreads = [max(abs(float(x)) for x in line.split("\t")[5:]) for line in tsv[1:]]
    assert len(spreads) == 43 and spreads == sorted(spreads, reverse=True) and spreads[0] > 0
    assert (tmp_path / "cmp" / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_runs_with_different_queries_are_compared_on_the_shared_ones(tmp_path: Path, capsys) -> None:
    bm25 = read_trec_run(BM25)
    few = {q: bm25[q] for q in list(bm25)[:30]}
    a = write_run(tmp_path / "a.txt", bm25)
    b = write_run(tmp_path / "b.txt", top10_reversed(few))
    out = compare(tmp_path, str(a), str(b), "--qrels", str(QRELS))
    assert out["num_queries"] == 30 and len(out["missing_queries"]["b"]) == 13
    err = capsys.readouterr().err
    assert "note: compared on the 30 judged queries every run answers; dropped 13 (b lacks 13)" in err
    assert out["systems"][0]["means"]["ndcg@10"] == pytest.approx(evaluate_run(few, read_qrels(QRELS))["ndcg_cut_10"])


def test_glob_takes_each_run_once_and_skips_progress_files(tmp_path: Path, capsys) -> None:
    bm25 = read_trec_run(BM25)
    write_run(tmp_path / "eval_dl19_a_top100.txt", bm25, accounting({}))
    write_run(tmp_path / "eval_dl19_b_top100.txt", top10_reversed(bm25))
    (tmp_path / "eval_dl19_c_top100.txt.partial.jsonl").write_text("{}\n")
    metrics = str(tmp_path / "eval_dl19_a_top100.txt.metrics.json")
    out = compare(tmp_path, str(tmp_path / "eval_dl19_*"), metrics, "--dataset", "dl19", "--name", "b=flipped")
    assert [s["name"] for s in out["systems"]] == ["a", "flipped"]
    assert "skipped" in capsys.readouterr().err


def test_order_sensitivity_of_identity_with_reversed_input(tmp_path: Path) -> None:
    bm25 = read_trec_run(BM25)
    write_run(tmp_path / "eval_dl19_identity_top100.txt", bm25)
    write_run(tmp_path / "eval_dl19_identity+shuffle-reverse_top100.txt", reversed_run(bm25))
    write_run(tmp_path / "eval_dl19_other_top100.txt", top10_reversed(bm25))
    pattern = str(tmp_path / "eval_dl19_*")
    out = compare(tmp_path, pattern, "--dataset", "dl19", "--name", "identity=BM25", "--order-pair", "BM25:other")
    rows = {o["shuffled"]: o for o in out["order_sensitivity"]}
    reverse = rows["identity+shuffle-reverse"]  # paired by the run labels: renaming the unshuffled run keeps the pair
    assert reverse["system"] == "BM25" and reverse["shuffle"] == "reverse" and reverse["queries"] == 43
    assert reverse["kendall_tau"] == pytest.approx(-1.0)
    means = {s["name"]: s["means"]["ndcg@10"] for s in out["systems"]}
    assert reverse["delta"] == pytest.approx(means["identity+shuffle-reverse"] - means["BM25"])
    assert reverse["delta"] == pytest.approx(0.1016 - 0.5058, abs=1e-4)  # reversed BM25: 0.1016
    assert -1 < rows["other"]["kendall_tau"] < 1 and rows["other"]["shuffle"] is None


def test_perank_entry_point_and_python_dash_m(tmp_path: Path, capsys) -> None:
    assert perank_main(["compare", str(BM25), str(BM25), "--dataset", "dl19"]) == 2  # one run, given twice
    assert "compare needs at least two runs, got 1" in capsys.readouterr().err
    assert perank_main(["comapre"]) == 2
    assert "unknown command 'comapre' (did you mean compare?)" in capsys.readouterr().err
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "perank.compare", "--help"], capture_output=True, text=True, env=env)
    assert done.returncode == 0 and "--per-query" in done.stdout


def test_benchmark_times_compare_on_synthetic_runs(tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    script = REPO / "benchmarks" / "run.py"
    args = ["compare_runs", "--runs", "3", "--repeats", "1", "--output-dir", str(tmp_path)]
    subprocess.run([sys.executable, str(script), *args], check=True, capture_output=True, env=env)
    result = json.loads((tmp_path / "compare_runs.json").read_text())
    assert result["runs"] == 3 and set(result["median_wall_s"]) == {"t-test", "randomization", "t-test, --per-query"}
    assert all(0 < s < 120 for s in result["median_wall_s"].values())
