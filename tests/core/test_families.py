"""One family manifest, one discovery: every family folder is laid out alike and declares itself in its manifest;
rerankers and training runners are found the same way, for the built-in families and for a package installed
beside perank (an entry point of the group ``perank.families``); a lookup imports only what it names."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers.paths import REPO
from perank.ranking import catalogue as catalogue_module
from perank.ranking.catalogue import ENTRY_POINT_GROUP, catalogue
from perank.ranking.family import Family, RerankerEntry, load_target
from perank.ranking.registry import available_rerankers, build_reranker, get_reranker_class
from perank.runs import RunIdentity
from perank.training.runner import available_runners, get_runner, get_runner_class

FAMILIES = REPO / "src" / "perank" / "families"

#: the runner names ``src/train.py --family`` has always taken
RUNNERS = ("pe-rank", "cross-encoder", "colbert", "listconranker", "llm-yes-no", "listwise-sft")


# ------------------------------------------------------------------------------------------------ built-in families


def test_every_family_folder_is_listed_and_laid_out_alike() -> None:
    import perank.families

    folders = sorted(p.name for p in FAMILIES.iterdir() if (p / "__init__.py").exists())
    assert sorted(perank.families.PACKAGES) == folders
    assert not [p.name for p in FAMILIES.glob("*.py") if p.name != "__init__.py"], "a family is a folder, not a file"
    for name in folders:
        room = FAMILIES / name
        assert (room / "manifest.py").is_file() and (room / "reranker.py").is_file(), name
        assert not ((room / "training.py").exists() and (room / "training").exists()), name


def test_each_manifest_names_classes_that_call_themselves_so() -> None:
    for family in catalogue().families:
        for entry in family.rerankers:
            assert isinstance(entry.target, str), f"{entry.name}: a built-in manifest names its class lazily"
            assert load_target(entry.target).name == entry.name
            assert all(get_reranker_class(alias) is load_target(entry.target) for alias in entry.names)
        for entry in family.runners:
            assert isinstance(entry.target, str) and load_target(entry.target).family == entry.name


def test_the_runner_names_of_old_still_train_and_each_family_trains_by_its_name() -> None:
    assert set(RUNNERS) <= set(available_runners())
    trainable = {family.name for family in catalogue().families if family.runners}
    assert trainable <= set(available_runners())  # dear's runner answers to "dear" as well as "listwise-sft"
    for name in RUNNERS:
        assert get_runner(name).family == name


def test_listing_imports_no_family_code_and_one_runner_no_other_familys() -> None:
    """In a fresh interpreter: listing rerankers and runners imports only manifests; looking up one runner (or one
    reranker) imports its own module and no other family's."""
    script = textwrap.dedent(
        """
        import json, sys
        from perank.ranking.registry import available_rerankers, get_reranker_class
        from perank.training.runner import available_runners, get_runner_class
        available_rerankers(), available_runners()
        listed = sorted(m for m in sys.modules if m.startswith("perank.families."))
        get_runner_class("cross-encoder")
        trained = sorted(m for m in sys.modules if m.startswith("perank.families."))
        get_reranker_class("identity")
        ranked = sorted(m for m in sys.modules if m.startswith("perank.families."))
        print(json.dumps([listed, trained, ranked]))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300, check=True
    )
    listed, trained, ranked = json.loads(proc.stdout.splitlines()[-1])
    assert listed and all(m.endswith(".manifest") or m.count(".") == 2 for m in listed), listed
    new = sorted(set(trained) - set(listed))
    assert "perank.families.cross_encoder.training" in new
    assert all(m.startswith("perank.families.cross_encoder.") for m in new), new
    assert sorted(set(ranked) - set(trained)) == ["perank.families.identity.reranker"]


# ------------------------------------------------------------------------------------------------ installed families

PLUGIN = {
    "toyrank/__init__.py": '"""A third-party perank family: ranks by candidate order reversed."""\n',
    "toyrank/manifest.py": """
        from perank.ranking.family import Family, RerankerEntry, RunnerEntry

        FAMILY = Family(
            name="toy",
            rerankers=(RerankerEntry("toy-reverse", "toyrank.reranker:ToyReverse", aliases=("toy",)),),
            runners=(RunnerEntry("toy", "toyrank.training:ToyRunner"),),
        )
        """,
    "toyrank/reranker.py": """
        from perank.ranking.base import BaseReranker, reorder


        class ToyReverse(BaseReranker):
            name = "toy-reverse"

            def __init__(self, flip: bool = True) -> None:
                self.flip = flip

            def describe(self):
                return {"reranker": self.name, "model": None, "flip": self.flip}

            def rerank_within_budget(self, requests):
                out = []
                for r in requests:
                    n = len(r.candidates)
                    order = list(range(n))[::-1] if self.flip else list(range(n))
                    out.append(reorder(r, order, [float(n - i) for i in range(n)]))
                return out
        """,
    "toyrank/training.py": """
        from dataclasses import dataclass

        from perank.training.arguments import TrainingArguments
        from perank.training.runner import TrainingRunner


        @dataclass
        class ModelArguments:
            model_name_or_path: str = "toy"


        @dataclass
        class DataArguments:
            data_path: str = ""


        class ToyRunner(TrainingRunner):
            family = "toy"

            def argument_classes(self):
                return ModelArguments, DataArguments, TrainingArguments

            def build_model(self, args):
                raise NotImplementedError("the test only looks the runner up and parses its flags")

            build_dataset = build_trainer = build_model
        """,
    "toyrank-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: toyrank\nVersion: 0.1\n",
    "toyrank-0.1.dist-info/entry_points.txt": f"[{ENTRY_POINT_GROUP}]\ntoy = toyrank.manifest:FAMILY\n",
}


@pytest.fixture()
def toyrank(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The package ``toyrank`` installed on ``sys.path`` with its ``perank.families`` entry point (a dist-info
    folder, as pip leaves it): nothing of perank is edited or faked."""
    for name, text in PLUGIN.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    monkeypatch.syspath_prepend(str(tmp_path))
    catalogue.cache_clear()
    yield
    catalogue.cache_clear()
    for module in [m for m in sys.modules if m == "toyrank" or m.startswith("toyrank.")]:
        monkeypatch.delitem(sys.modules, module)


def test_an_installed_package_adds_a_reranker_and_a_runner(toyrank, tmp_path: Path) -> None:
    assert {"toy-reverse", "toy"} <= set(available_rerankers()) and "toy" in available_runners()
    assert "toyrank.reranker" not in sys.modules and "toyrank.training" not in sys.modules  # found, not imported
    ranker = build_reranker("toy", flip=False)
    assert type(ranker).__module__ == "toyrank.reranker" and "toyrank.training" not in sys.modules
    assert [c.docid for c in ranker.rank("q", ["a", "b", "c"]).candidates] == ["0", "1", "2"]
    assert RunIdentity.of(ranker).label == "toy-reverse+flip-False"
    runner = get_runner("toy")
    assert type(runner).__module__ == "toyrank.training" and runner.family == "toy"
    args = runner.parse(["--data_path", "rows.jsonl", "--output_dir", str(tmp_path / "out")])
    assert args.data.data_path == "rows.jsonl" and args.model.model_name_or_path == "toy"


def test_without_the_package_its_names_are_unknown() -> None:
    assert "toy-reverse" not in available_rerankers() and "toy" not in available_runners()


# ------------------------------------------------------------------------------------------------ manifests checked


class NotAReranker:
    """A class a mistaken manifest might name."""


def test_a_name_two_families_claim_is_refused(install_family) -> None:
    install_family(Family("copy", rerankers=(RerankerEntry("dense", "perank.families.dense.reranker:DenseReranker"),)))
    with pytest.raises(ValueError, match="reranker name 'dense' is claimed by families 'dense' and 'copy'"):
        available_rerankers()


def test_a_manifest_must_name_a_reranker_that_calls_itself_so(install_family) -> None:
    install_family(
        Family(
            "wrong",
            rerankers=(
                RerankerEntry("other-name", "perank.families.identity.reranker:IdentityReranker"),
                RerankerEntry("not-a-reranker", NotAReranker),
            ),
        )
    )
    with pytest.raises(ValueError, match="names IdentityReranker 'other-name', the class calls itself 'identity'"):
        get_reranker_class("other-name")
    with pytest.raises(TypeError, match="'not-a-reranker' .* is not a BaseReranker"):
        get_reranker_class("not-a-reranker")
    with pytest.raises(ValueError, match="expected 'package.module:Class'"):
        load_target("perank.families.identity.reranker.IdentityReranker")
    with pytest.raises(ValueError, match="declares neither a reranker nor a training runner"):
        Family("empty")


def test_a_broken_installed_family_is_skipped_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        name, value = "broken", "missing_package.manifest:FAMILY"

        def load(self) -> Family:
            raise ModuleNotFoundError("No module named 'missing_package'")

    monkeypatch.setattr(catalogue_module, "entry_points", lambda *, group: [Broken()])
    catalogue.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="perank.ranking.catalogue"):
            assert "identity" in available_rerankers() and "pe-rank" in available_runners()
        assert "perank family 'broken' (missing_package.manifest:FAMILY) failed to load, skipped" in caplog.text
    finally:
        monkeypatch.undo()
        catalogue.cache_clear()
    assert get_runner_class("pe-rank").family == "pe-rank"
