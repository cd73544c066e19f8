"""The dataset registry: every evaluation set by its PE-Rank name.

Each entry carries the Pyserini names (prebuilt BM25 index, topics, qrels), so that on a machine with
network access retrieval runs against the official index exactly as the paper did, and the files this
repository ships under ``data/`` so that the same commands run offline. The shipped files and their
provenance are listed in ``data/README.md``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from perank.types import InputError

REPO_ROOT = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """The folder holding shipped data (``$PERANK_DATA`` overrides the repository's ``data/``)."""
    return Path(os.environ.get("PERANK_DATA", REPO_ROOT / "data"))


def results_dir() -> Path:
    """The folder runs are written under (``$PERANK_RESULTS`` overrides the repository's ``results/``)."""
    return Path(os.environ.get("PERANK_RESULTS", REPO_ROOT / "results"))


@dataclass(frozen=True)
class DatasetSpec:
    """Everything needed to retrieve for and score one dataset.

    Local paths are relative to :func:`data_dir`; ``None`` means the file is not shipped.
    """

    name: str
    pyserini_index: str
    pyserini_topics: str
    pyserini_qrels: str
    topics_file: str | None = None
    qrels_file: str | None = None
    candidates_file: str | None = None  # BM25 top-100 with text, for offline reranking
    corpus_file: str | None = None  # BEIR corpus JSONL, for offline retrieval
    beir_name: str | None = None

    def local(self, attr: str) -> Path | None:
        """The absolute path of a shipped file, or None when this dataset does not ship it."""
        rel = getattr(self, attr)
        return None if rel is None else data_dir() / rel

    def require(self, attr: str) -> Path:
        """The absolute path of a shipped file; a clear error when it is not shipped or missing."""
        path = self.local(attr)
        what = attr.removesuffix("_file")
        if path is None:
            raise InputError(
                f"dataset {self.name!r} ships no {what} file; pass it explicitly or use Pyserini "
                f"({self.pyserini_qrels if what == 'qrels' else self.pyserini_index})"
            )
        if not path.exists():
            raise InputError(f"dataset {self.name!r}: {what} file {path} is missing")
        return path


def _msmarco(name: str, topics: str, qrels: str, topics_file: str) -> DatasetSpec:
    return DatasetSpec(
        name=name,
        pyserini_index="msmarco-v1-passage",
        pyserini_topics=topics,
        pyserini_qrels=qrels,
        topics_file=f"msmarco-passage/{topics_file}",
        qrels_file=f"msmarco-passage/qrels.{qrels}.txt",
        candidates_file=f"msmarco-passage/retrieve_results_{name}.json",
    )


def _beir(name: str, beir_name: str, *, qrels: bool = True, topics: bool = True, corpus: bool = False) -> DatasetSpec:
    return DatasetSpec(
        name=name,
        beir_name=beir_name,
        pyserini_index=f"beir-v1.0.0-{beir_name}.flat",
        pyserini_topics=f"beir-v1.0.0-{beir_name}-test",
        pyserini_qrels=f"beir-v1.0.0-{beir_name}-test",
        topics_file=f"beir/topics.beir-v1.0.0-{beir_name}.test.tsv.gz" if topics else None,
        qrels_file=f"beir/qrels.beir-v1.0.0-{beir_name}.test.txt" if qrels else None,
        corpus_file=f"beir/{beir_name}/corpus.jsonl.gz" if corpus else None,
    )


# PE-Rank's short names first, then the rest of BEIR under their own names.
_SPECS: list[DatasetSpec] = [
    _msmarco("dl19", "dl19-passage", "dl19-passage", "topics.dl19-passage.txt"),
    _msmarco("dl20", "dl20", "dl20-passage", "topics.dl20.txt"),
    _beir("covid", "trec-covid"),
    _beir("nfcorpus", "nfcorpus"),
    _beir("touche", "webis-touche2020"),
    _beir("dbpedia", "dbpedia-entity"),
    _beir("scifact", "scifact"),
    _beir("signal", "signal1m"),
    _beir("news", "trec-news"),
    _beir("robust04", "robust04", qrels=False),
    DatasetSpec(
        name="arguana",
        beir_name="arguana",
        pyserini_index="beir-v1.0.0-arguana.flat",
        pyserini_topics="beir-v1.0.0-arguana-test",
        pyserini_qrels="beir-v1.0.0-arguana-test",
        topics_file="beir/arguana/queries.jsonl.gz",
        qrels_file="beir/qrels.beir-v1.0.0-arguana.test.txt",
        corpus_file="beir/arguana/corpus.jsonl.gz",
    ),
    *(
        _beir(n, n, qrels=False, topics=False)
        for n in (
            "climate-fever",
            "fever",
            "fiqa",
            "hotpotqa",
            "nq",
            "quora",
            "scidocs",
            "bioasq",
            "cqadupstack-android",
        )
    ),
]

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in _SPECS}
# BEIR's own names resolve too (trec-covid -> covid, ...).
_ALIASES: dict[str, str] = {s.beir_name: s.name for s in _SPECS if s.beir_name and s.beir_name != s.name}


def get_dataset(name: str) -> DatasetSpec:
    """Look a dataset up by PE-Rank or BEIR name; an unknown name lists the known ones."""
    key = _ALIASES.get(name, name)
    if key not in DATASETS:
        from perank.ranking.options import suggest

        raise InputError(f"unknown dataset {name!r}{suggest(name, DATASETS)}; known: {', '.join(DATASETS)}")
    return DATASETS[key]


def find_qrels(dataset: str | None, qrels: str | os.PathLike[str] | None = None) -> Path | None:
    """The qrels to score ``dataset`` with: ``qrels`` (which must exist), else the shipped file, else None.

    None leaves the decision to the caller, because a missing qrels file means different things: the
    pipeline still writes its run (unscored), while ``trec_eval`` has nothing to do and fails, with
    :meth:`DatasetSpec.require`'s message saying how to get the file. An explicit path is checked first,
    so a typo fails in a second rather than after hours of reranking.
    """
    if qrels is not None:
        path = Path(qrels)
        if not path.is_file():
            raise InputError(f"{path}: qrels file not found")
        return path
    if dataset is None:  # one's own candidates: only an explicit qrels file scores them
        return None
    path = get_dataset(dataset).local("qrels_file")
    return path if path is not None and path.exists() else None
