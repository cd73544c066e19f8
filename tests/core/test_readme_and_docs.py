"""README.md and docs/ say what is so: every relative link (and #anchor) resolves, the README starts with the
two commands, its results table holds the regression scores of results/expected/, its Python example runs, its
family list names every registered family, and the paths its commands and layout name exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from helpers.paths import REPO
from perank.ranking import registry

README = REPO / "README.md"
DOCS = REPO / "docs"
PACKAGE = REPO / "src" / "perank"

#: the markdown pages whose links must resolve
PAGES = [README, *sorted(DOCS.glob("*.md"))]

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^\s*(```|~~~)")


# ------------------------------------------------------------------------------------------------ helpers


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks (links inside code are not links)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def code_blocks(text: str, language: str = "") -> list[str]:
    """The bodies of the fenced blocks opened with ```language (any block when language is "")."""
    pattern = r"^```" + (re.escape(language) if language else r"[^\n]*") + r"\n(.*?)^```"
    return re.findall(pattern, text, re.S | re.M)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (hyphens and underscores kept), spaces to
    hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a markdown page (a repeated heading gets -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose_lines(page.read_text()):
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(page: Path) -> list[str]:
    """The relative links of ``page`` whose file (or, in a markdown file, #anchor) does not exist."""
    broken = []
    for line in prose_lines(page.read_text()):
        for target in LINK.findall(line):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{page.name}: {target} (no heading #{anchor} in {file.name})")
    return broken


def section(text: str, title: str) -> str:
    """The body of the ``## title`` section of a page (up to the next ``## ``)."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"no '## {title}' section"
    return match.group(1)


# ------------------------------------------------------------------------------------------------ links


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert not broken_links(page), broken_links(page)


def test_the_link_check_finds_broken_links(tmp_path: Path) -> None:
    """The check above can fail: a missing file, a missing anchor, and an anchor of the page itself."""
    (tmp_path / "other.md").write_text("# Other page\n\n## The `make` targets\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n## Good: section\n\n"
        "[ok](other.md) [ok](other.md#the-make-targets) [ok](#good-section) [web](https://example.com/x.md)\n"
        "[gone](missing.md) [bad anchor](other.md#no-such-heading) [bad own](#nowhere)\n"
        "```\n[in code](not-a-link.md)\n```\n"
    )
    assert broken_links(page) == [
        "page.md: missing.md (no such file)",
        "page.md: other.md#no-such-heading (no heading #no-such-heading in other.md)",
        "page.md: #nowhere (no heading #nowhere in page.md)",
    ]


def test_the_documentation_list_links_every_page_of_docs() -> None:
    """The README's documentation list leads to every page under docs/."""
    linked = {Path(target).name for target in LINK.findall(section(README.read_text(), "Documentation"))}
    missing = sorted(p.name for p in DOCS.glob("*.md") if p.name not in linked)
    assert not missing, f"README.md's '## Documentation' does not link {missing}"


# ------------------------------------------------------------------------------------------------ the README


def test_the_readme_starts_with_the_two_commands() -> None:
    """The project rule: the first code block, before any section, is `make demo` then `make test`."""
    text = README.read_text()
    head = text.split("\n## ", 1)[0]
    blocks = code_blocks(head)
    assert blocks, "README.md has no code block before its first section"
    commands = [line.split("#")[0].strip() for line in blocks[0].splitlines() if line.strip()]
    assert commands[:2] == ["make demo", "make test"], commands
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def expected_scores() -> dict[str, dict[str, float]]:
    """``{reranker arguments: {dataset: nDCG@10}}`` from results/expected/*.yaml: the arguments of each file's
    command from ``--reranker`` on, without ``--reranker`` (``colbert --model-path checkpoints/colbert-minilm``),
    so two models of one family are two rows."""
    scores: dict[str, dict[str, float]] = {}
    for file in sorted((REPO / "results" / "expected").glob("*.yaml")):
        record = yaml.safe_load(file.read_text())
        reranker = re.search(r"--reranker (.+)$", record["command"]).group(1).strip()
        scores.setdefault(reranker, {})[record["dataset"]] = record["metrics"]["ndcg_cut_10"]
    return scores


def test_the_readme_results_are_the_regression_scores() -> None:
    """One row per model of results/expected/, its `--reranker` arguments in the second column, its DL19 and DL20
    nDCG@10 as the files hold them (4 decimals)."""
    results = section(README.read_text(), "Results")
    header = next(line for line in results.splitlines() if line.startswith("| system"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    rows = {}
    for line in results.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line != header and len(cells) == len(columns) and cells[1].startswith("`"):
            rows[cells[1].strip("`")] = dict(zip(columns, cells))
    expected = expected_scores()
    assert expected, "no results/expected/*.yaml"
    assert set(rows) == set(expected), f"README rows {sorted(rows)} vs expected files {sorted(expected)}"
    for reranker, by_dataset in expected.items():
        for dataset, value in by_dataset.items():
            assert rows[reranker][dataset.upper()] == f"{value:.4f}", (reranker, dataset)
    for target in ("results/expected/", "benchmarks/results/", "docs/compare.md"):
        assert any(link.startswith(target) for link in LINK.findall(results)), f"Results links no {target}"


def test_the_readme_names_every_family() -> None:
    """Each registered family (its own name) has its line in the README's list; docs/families.md names every
    registered name, aliases included."""
    families = section(README.read_text(), "Families")
    listed = set(re.findall(r"^- `([\w-]+)`", families, re.M))
    own = {registry.get_reranker_class(name).name for name in registry.available_rerankers()}
    assert listed == own, f"README lists {sorted(listed - own)} that are not families, misses {sorted(own - listed)}"
    reference = (DOCS / "families.md").read_text()
    unnamed = [name for name in registry.available_rerankers() if f"`{name}`" not in reference]
    assert not unnamed, f"docs/families.md does not name {unnamed}"


def test_the_paths_the_readme_commands_name_exist() -> None:
    """Scripts, configs and checkpoints that the README's command blocks name (outputs under results/ aside)."""
    text = "\n".join(code_blocks(README.read_text(), "bash"))
    paths = set(re.findall(r"(?<![\w/.-])((?:src|scripts|checkpoints|benchmarks|data)/[\w./-]*\w)", text))
    assert {"src/evaluate.py", "src/train.py", "src/scripts/trec_eval.py"} <= paths
    missing = sorted(p for p in paths if not (REPO / p).exists())
    assert not missing, f"README.md commands name paths that do not exist: {missing}"


def layout_entries() -> tuple[list[Path], list[Path]]:
    """The README's layout block: (top-level paths, paths under src/perank/), each first column split on ', '."""
    block = next(b for b in code_blocks(section(README.read_text(), "Layout")) if "src/perank/" in b)
    top, package = [], []
    for line in block.splitlines():
        first = re.split(r"\s{2,}", line.strip())[0]
        names = [n for n in first.split(", ") if n]
        if line.startswith("  "):
            package += [PACKAGE / n.rstrip("/") for n in names]
        else:
            top += [REPO / n.rstrip("/") for n in names]
    return top, package


def test_the_readme_layout_names_what_exists() -> None:
    top, package = layout_entries()
    missing = [str(p.relative_to(REPO)) for p in top + package if not p.exists()]
    assert not missing, f"README.md's layout names paths that do not exist: {missing}"
    subpackages = {p for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    unlisted = sorted(p.name for p in subpackages - set(package))
    assert not unlisted, f"add these subpackages of src/perank to README.md's layout: {unlisted}"
    folders = {p.relative_to(REPO).parts[0] for p in top}
    assert {"src", "scripts", "checkpoints", "data", "results", "benchmarks", "tests", "docs"} <= folders


@pytest.mark.slow
def test_the_readme_python_example_runs() -> None:
    """The README's API block, run as written (the shipped PE-Rank and the packaged MiniLM); docs/usage.md shows
    the same block."""
    blocks = code_blocks(section(README.read_text(), "Python API"), "python")
    assert len(blocks) == 1
    assert blocks[0] in code_blocks((DOCS / "usage.md").read_text(), "python"), "docs/usage.md's example differs"
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)  # noqa: S102  (our own README)
    result = namespace["result"]
    assert [c.docid for c in result.candidates] == ["0", "1"]  # the flea passage first, "Paris" last
    assert result.candidates[0].text.startswith("The life cycle of a flea")
    scores = namespace["dense"].compute_score([("how long do fleas live", "Fleas live 2-3 months.")], normalize=True)
    assert len(scores) == 1 and 0.5 < scores[0] <= 1.0
    assert "pe-rank" in namespace["list_rerankers"]()
