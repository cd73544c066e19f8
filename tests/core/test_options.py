"""Strict reranker options: a misspelled or mistyped option is a one-line error, never silently dropped."""

from __future__ import annotations

import pytest

from helpers.paths import REPO
from perank.cli.evaluate import main
from perank.ranking.options import check_options, suggest
from perank.ranking.registry import accepted_options, build_reranker
from perank.types import InputError


class Family:
    def __init__(
        self,
        model_path: str | None = None,
        *,
        batch_size: int = 8,
        temperature: float = 1.0,
        greedy: bool = True,
        scores: dict[str, float] | None = None,
    ) -> None:
        pass


def test_suggestion_names_the_closest_option() -> None:
    assert suggest("batch_sise", ["batch_size", "model_path"]) == " (did you mean batch_size?)"
    assert suggest("zzz", ["batch_size"]) == ""


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch_sise": 4}, "has no option 'batch_sise' (did you mean batch_size?)"),
        ({"batch_size": "four"}, "batch_size='four': expected int, got str"),
        ({"batch_size": True}, "batch_size=True: expected int, got bool"),
        ({"batch_size": 2.5}, "expected int, got float"),
        ({"greedy": 1}, "greedy=1: expected bool, got int"),
        ({"model_path": 3}, "model_path=3: expected str or None, got int"),
        ({"scores": [1, 2]}, "scores=[1, 2]: expected dict or None, got list"),
    ],
)
def test_bad_options_are_refused_with_one_line(options, message) -> None:
    with pytest.raises(InputError) as err:
        check_options("toy", Family, options)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_good_options_pass_and_ints_are_fine_floats() -> None:
    accepted, dropped = check_options("toy", Family, {"temperature": 2, "model_path": None, "scores": {"a": 1.0}})
    assert accepted == {"temperature": 2.0, "model_path": None, "scores": {"a": 1.0}}
    assert isinstance(accepted["temperature"], float) and dropped == []


def test_only_passthrough_options_may_be_dropped() -> None:
    accepted, dropped = check_options("toy", Family, {"window_size": 20, "batch_size": 2}, passthrough=["window_size"])
    assert accepted == {"batch_size": 2} and dropped == ["window_size"]
    with pytest.raises(InputError, match="has no option 'step'"):
        check_options("toy", Family, {"step": 10}, passthrough=["window_size"])


def test_registry_is_strict_and_suggests_names() -> None:
    with pytest.raises(InputError, match="unknown reranker 'densse' \\(did you mean dense\\?\\)"):
        build_reranker("densse")
    with pytest.raises(InputError, match="reranker 'identity' has no option 'window_size'; its options: none"):
        build_reranker("identity", window_size=20)
    assert accepted_options("identity", {"window_size": 20}, passthrough=["window_size"]) == ({}, ["window_size"])


def test_evaluate_refuses_a_misspelled_option_before_loading_anything(capsys, tmp_path) -> None:
    code = main(["--datasets", "dl19", "--reranker", "dense", "-o", "batch_sise=4", "--output-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "has no option 'batch_sise' (did you mean batch_size?)" in err
    assert list(tmp_path.iterdir()) == []


def test_evaluate_refuses_a_mistyped_value(capsys, tmp_path) -> None:
    code = main(["--datasets", "dl19", "--reranker", "dense", "-o", "batch_size=many", "--output-dir", str(tmp_path)])
    assert code == 2 and "batch_size='many': expected int, got str" in capsys.readouterr().err


def test_evaluate_notes_shared_flags_a_family_does_not_use(capsys, tmp_path) -> None:
    data = str(REPO / "data" / "msmarco-passage" / "retrieve_results_dl19.json")
    code = main(
        ["--datasets", "dl19", "--reranker", "identity", "--window-size", "5", "--retrieval-results", data]
        + ["--output-dir", str(tmp_path), "--no-progress"]
    )
    assert code == 0
    assert "note: reranker 'identity' does not use --window-size; ignored" in capsys.readouterr().err
