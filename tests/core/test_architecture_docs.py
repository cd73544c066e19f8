"""docs/architecture.md says what is so: its layout names the files that exist (and every module of the core
and every family), its arrows point down, its strategy claims hold, and its "Adding a family" example runs as
written and ranks by the first stage's scores."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.paths import REPO
from perank import Reranker
from perank.backends.hf_lm import HFLanguageModel
from perank.backends.lm import Capability, LanguageModel
from perank.cli.evaluate import main as evaluate
from perank.io import read_retrieval_results, write_retrieval_results
from perank.ranking import registry
from perank.ranking.pointwise import PointwiseReranker
from perank.ranking.sliding_window import WindowReranker
from perank.types import Candidate, InputError, Query, Request

DOC = REPO / "docs" / "architecture.md"
SRC = REPO / "src"
PACKAGE = SRC / "perank"
DL19_JSON = REPO / "data" / "msmarco-passage" / "retrieve_results_dl19.json"

#: folders whose every module and subpackage the layout must name (the core and the rooms of the families)
LISTED_IN_FULL = ("ranking", "backends", "families")

# ------------------------------------------------------------------------------------------------ the layout


def layout() -> list[tuple[Path, str]]:
    """The layout block as ``(path, description)`` per entry: ``  ranking/  the core`` under ``src/perank/``
    gives ``(src/perank/ranking, "the core")``; comma-separated names (``pairwise.py, setwise.py``) give one
    entry each, and a continuation line (indented past any child) extends the previous entry's description."""
    block = re.search(r"```\n(src/perank/\n.*?)```", DOC.read_text(), re.S).group(1).splitlines()
    stack: list[tuple[int, Path]] = [(0, SRC / "perank")]
    entries: list[tuple[Path, str]] = []
    for line in block[1:]:
        indent = len(line) - len(line.lstrip())
        match = re.match(r"((?:[\w.]+/?)(?:, [\w.]+/?)*)(.*)", line.strip())
        while len(stack) > 1 and stack[-1][0] >= indent:
            stack.pop()
        if match is None or stack[-1][0] != indent - 2:  # deeper than a child: prose continuing the entry above
            path, text = entries[-1]
            entries[-1] = (path, f"{text} {line.strip()}")
            continue
        names, text = match.group(1).split(", "), match.group(2).strip()
        for name in names:
            entries.append((stack[-1][1] / name.rstrip("/"), text))
        if names[-1].endswith("/"):
            stack.append((indent, stack[-1][1] / names[-1].rstrip("/")))
    return entries


def test_the_layout_is_parsed_as_a_tree() -> None:
    """The parser reads the block as the tree it draws (so the tests below check the paths the doc means)."""
    paths = {path.relative_to(SRC).as_posix() for path, _ in layout()}
    assert {"perank/api.py", "perank/ranking/sliding_window.py", "perank/cli"} <= paths
    assert {"perank/backends/weights.py", "perank/families/pe_rank", "perank/families/dense"} <= paths
    assert "perank/training/group_loss.py" not in paths  # named in the prose of training/, not as an entry


def test_every_path_the_layout_names_exists() -> None:
    missing = [str(path.relative_to(REPO)) for path, _ in layout() if not path.exists()]
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"


def test_every_module_the_layout_mentions_in_passing_exists() -> None:
    """``training/ ... runner.py (TrainingRunner ...), hardware.py`` and ``cli/errors.py``: each file named in an
    entry's description is in that entry's folder or beside it."""
    missing = []
    for path, text in layout():
        for name in re.findall(r"[\w/]+\.py\b", text):
            if not ((path / name).exists() or (path.parent / name).exists()):
                missing.append(f"{path.relative_to(SRC)}: {name}")
    assert not missing, f"docs/architecture.md mentions modules that do not exist: {missing}"


def _modules(folder: Path) -> Iterator[Path]:
    """The modules and subpackages directly in ``folder`` (caches and private helpers aside)."""
    for child in sorted(folder.iterdir()):
        if child.name == "__pycache__":
            continue
        if (child.suffix == ".py" and child.name != "__init__.py") or (child / "__init__.py").exists():
            yield child


def test_the_core_and_every_family_are_in_the_layout() -> None:
    named = {path for path, _ in layout()}
    modules = [path for folder in LISTED_IN_FULL for path in _modules(PACKAGE / folder)]
    unlisted = [str(path.relative_to(SRC)) for path in modules if path not in named]
    assert not unlisted, f"add these to the layout of docs/architecture.md: {unlisted}"


def test_every_registered_family_lives_in_a_room_the_layout_names() -> None:
    rooms = {path for path, _ in layout() if path.parent == PACKAGE / "families"}
    homeless = {}
    for name in registry.available_rerankers():
        module = registry.get_reranker_class(name).__module__.split(".")
        room = PACKAGE / "families" / module[2] if module[:2] == ["perank", "families"] and len(module) > 2 else None
        if room not in rooms:
            homeless[name] = ".".join(module)
    assert not homeless, f"registered families outside the rooms docs/architecture.md names: {homeless}"


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function (absolute names)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [("ranking", ("perank.families",)), ("backends", ("perank.families", "perank.ranking"))],
)
def test_arrows_only_point_down(folder: str, forbidden: tuple[str, ...]) -> None:
    """The doc's promise: `ranking` and `backends` know no family (`ranking` may use `backends`, never the reverse)."""
    wrong = {
        str(path.relative_to(SRC)): sorted(n for n in _imports(path) if n.startswith(forbidden))
        for path in (PACKAGE / folder).rglob("*.py")
    }
    assert not {k: v for k, v in wrong.items() if v}


def test_no_family_loads_a_causal_lm_itself() -> None:
    """The LM layer's promise: a causal LM (and a LoRA adapter on it) is loaded only in ``backends`` (the handle's
    loaders), so every family, its training runner included, reads it one way."""
    loaders = ("AutoModelForCausalLM", "PeftModel")
    wrong = [
        f"{path.relative_to(SRC)}: {name}"
        for path in (PACKAGE / "families").rglob("*.py")
        for name in loaders
        if name in path.read_text()
    ]
    assert not wrong


def test_the_strategies_the_doc_names() -> None:
    """The doc's claim: `dense` is a `PointwiseReranker`; `pe-rank`, `listwise-text-embedding` and
    `listwise-text` are `WindowReranker`s."""
    assert issubclass(registry.get_reranker_class("dense"), PointwiseReranker)
    for name in ("pe-rank", "listwise-text-embedding", "listwise-text"):
        assert issubclass(registry.get_reranker_class(name), WindowReranker), name


# ------------------------------------------------------------------------------------------------ the example


def example_source() -> str:
    section = DOC.read_text().split("## Adding a family", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture()
def first_stage_family(install_family):
    """The doc's block, executed as written, and its ``FAMILY`` installed as a package's entry point would install
    it (only for the test)."""
    namespace: dict[str, object] = {}
    exec(compile(example_source(), str(DOC), "exec"), namespace)  # noqa: S102  (our own docs)
    install_family(namespace["FAMILY"])
    return namespace["FirstStageScoreReranker"]


def _candidates(scores: dict[str, float]) -> list[Candidate]:
    """Candidates in the given order (NOT sorted by score), each with its first-stage score."""
    return [Candidate(docid=d, text=f"text of {d}", score=s, rank=i + 1) for i, (d, s) in enumerate(scores.items())]


def test_the_example_family_ranks_by_first_stage_scores(first_stage_family) -> None:
    ranker = Reranker("first-stage-score")
    assert isinstance(ranker.family, first_stage_family)
    result = ranker.rank("q", _candidates({"a": 1.0, "b": 3.0, "c": 2.0, "d": -0.5}))
    assert [c.docid for c in result.candidates] == ["b", "c", "a", "d"]
    assert [c.score for c in result.candidates] == [3.0, 2.0, 1.0, -0.5]
    assert result.stats["tokens_processed"] == 0 and result.stats["tokens_generated"] == 0
    # a batch of queries: each keeps its own scores (the pairs of both requests are flattened together)
    requests = [
        Request(Query("q1", "one"), _candidates({"x": 0.1, "y": 0.9})),
        Request(Query("q2", "two"), _candidates({"z": 5.0, "w": 7.0, "v": 6.0})),
    ]
    assert [[c.docid for c in r.candidates] for r in ranker.rerank(requests)] == [["y", "x"], ["w", "v", "z"]]


def test_the_example_family_refuses_pairs_without_a_first_stage(first_stage_family) -> None:
    with pytest.raises(InputError, match="first-stage-score: these pairs carry no first-stage scores"):
        Reranker("first-stage-score").compute_score([("q", "b"), ("q", "a")])


def test_the_example_family_is_reachable_from_evaluate(
    first_stage_family, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``evaluate.py --reranker first-stage-score`` on DL19's BM25 candidates written in REVERSE order gives BM25's
    nDCG@10 back (0.5058, as identity on the file in BM25 order): the BM25 scores reached the family."""
    requests = read_retrieval_results(DL19_JSON)
    for request in requests:
        request.candidates.reverse()
    reversed_file = tmp_path / "dl19_reversed.jsonl"
    write_retrieval_results(reversed_file, requests)
    argv = ["--datasets", "dl19", "--reranker", "first-stage-score", "--retrieval-results", str(reversed_file)]
    assert evaluate([*argv, "--output-dir", str(tmp_path / "runs"), "--no-progress"]) == 0
    assert "ndcg_cut_10\t0.5058" in capsys.readouterr().out.splitlines()


# ------------------------------------------------------------------------------------------------ the LLM example


def lm_example_source() -> str:
    section = DOC.read_text().split("## The language-model layer", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture()
def yes_minus_no_family(install_family):
    """The LM layer's example, executed as written, its ``FAMILY`` installed as a package would (only for the
    test)."""
    namespace: dict[str, object] = {}
    exec(compile(lm_example_source(), str(DOC), "exec"), namespace)  # noqa: S102  (our own docs)
    install_family(namespace["FAMILY"])
    return namespace["YesMinusNoReranker"]


def test_the_llm_example_family_ranks_through_the_handle(yes_minus_no_family, tiny_model) -> None:
    lm = HFLanguageModel(tiny_model.llm, tiny_model.tokenizer, name="tiny")
    docs = ["Fleas live 2-3 months.", "Paris is in France.", "Cats sleep a lot.", "Fleas jump."]
    ranker = Reranker("llm-yes-minus-no", lm=lm, batch_size=3)
    result = ranker.rank("how long do fleas live", docs)
    yes, no = lm.token_id("Yes"), lm.token_id("No")
    expected = {}
    for i, doc in enumerate(docs):  # one pair at a time, straight from the handle
        row = lm.encode(lm.render(f"Query: how long do fleas live\nPassage: {doc}\n" + PROBE))
        logits = lm.next_token_logits([row], [yes, no])[0]
        expected[str(i)] = float(logits[0] - logits[1])
    assert {c.docid: c.score for c in result.candidates} == pytest.approx(expected, abs=1e-4)
    assert [c.docid for c in result.candidates] == sorted(expected, key=lambda d: -expected[d])
    assert result.stats["tokens_processed"] > 0
    assert ranker.family.describe()["capabilities"] == ["generate", "loglik", "next_token_logits"]
    assert len(lm_example_source().strip().splitlines()) <= 36  # a whole LLM family: its policy and its manifest


PROBE = "Is the passage relevant to the query? Answer Yes or No."


def test_the_llm_example_family_refuses_a_handle_without_logits(yes_minus_no_family, tiny_model) -> None:
    server = LanguageModel(tiny_model.tokenizer, name="a-server", capabilities=frozenset({Capability.GENERATE}))
    with pytest.raises(InputError, match="^llm-yes-minus-no needs next_token_logits; the language model a-server"):
        Reranker("llm-yes-minus-no", lm=server)
