"""Readers and writers for every file format the toolkit exchanges.

One package owns the formats so that the pipeline, the training-data builders and the scripts all read
and write them the same way:

- retrieval results JSONL: ``{"query": str, "hits": [{"content", "qid", "docid", "rank", "score"}]}``,
  one line per query (the PE-Rank layout), and rank_llm-style JSON arrays of the same objects
  (:mod:`perank.io.candidates`);
- TREC run files (``qid Q0 docid rank score tag``, scores strictly decreasing within a query), qrels, topics and
  BEIR corpora (:mod:`perank.io.trec`);
- atomic writes, gzip and line-by-line decoding (:mod:`perank.io.files`), the checked values every reader shares
  (:mod:`perank.io.fields`).

Every write is atomic (a temporary file in the same folder, then ``os.replace``) so an interrupted run
never leaves a half-written file behind. Every read error is an :class:`~perank.types.InputError`
naming the file and the line. Text files are read as UTF-8, with or without a byte-order mark.
"""

from perank.io.candidates import (
    append_jsonl,
    read_rank_llm_json,
    read_retrieval_results,
    request_to_obj,
    write_retrieval_results,
)
from perank.io.fields import finite_float, json_line
from perank.io.files import GZIP_ERRORS, PathLike, atomic_write, remove_orphaned_temps
from perank.io.trec import read_corpus, read_qrels, read_topics, read_trec_run, strictly_decreasing, write_trec_run

__all__ = [
    "GZIP_ERRORS",
    "PathLike",
    "append_jsonl",
    "atomic_write",
    "finite_float",
    "json_line",
    "read_corpus",
    "read_qrels",
    "read_rank_llm_json",
    "read_retrieval_results",
    "read_topics",
    "read_trec_run",
    "remove_orphaned_temps",
    "request_to_obj",
    "strictly_decreasing",
    "write_retrieval_results",
    "write_trec_run",
]
