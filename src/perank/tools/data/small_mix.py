"""Candidate lists for the small PE-Rank's training mix: many distinct queries, none from DL19.

The first small model, trained on DL20's 54 judged queries only, fitted those queries (DL20 nDCG@10 0.63)
and ranked DL19 worse than BM25: with so few queries the LoRA learns the queries, not how to read the
embeddings. What it needs is many distinct queries, each with a candidate list a teacher can order. The
shipped data offers three sources, all retrieved here with the embedded bm25s (Lucene analysis, k1 0.9, b 0.4):

- ``arguana_train.jsonl`` / ``arguana_val.jsonl``: ArguAna's 1,406 queries over its own corpus, split into a
  training part and ``--val-queries`` held-out queries (their qrels make a validation set that is not DL19).
  ArguAna's queries are whole arguments (~190 words, and the prompt holds the query twice), so each is cut
  to its first ``--query-words`` words before retrieval: prompts stay near DL19's length (~360 tokens)
  instead of 1,000-1,700, and retrieval, teacher and prompt all see the same query text;
- ``mixed.jsonl``: the query texts of every other shipped topics file (DL20's 200 topics and the BEIR test
  topics: dbpedia-entity, nfcorpus, robust04, scifact, signal1m, trec-covid, trec-news, webis-touche2020)
  over a mixed corpus of ArguAna's documents and the DL20 BM25 candidate passages. The lists are only
  loosely on-topic, but the dense teacher (``perank build-rank-data --teacher dense``) still orders them, and the
  student learns to rank by the embeddings rather than memorise a query. Their qids get the set's name as
  a prefix (``scifact:1``), so no qid can collide with DL19's.

Only query *texts* of the BEIR test topics are used (never their judgments); DL19's topics, qrels and
candidate passages are never read except to refuse any overlap (qid or query text).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from perank.cli.errors import run_guarded
from perank.datasets import data_dir
from perank.io import read_corpus, read_qrels, read_retrieval_results, read_topics, write_retrieval_results
from perank.retrieval.api import bm25s_batches, search_topics
from perank.retrieval.bm25s_backend import beir_passage_text, build_bm25s_index
from perank.training.holdout import held_out_texts, query_text_key

#: the BEIR test sets whose query texts (never their judgments) join the mixed query set
BEIR_TOPIC_SETS = (
    "dbpedia-entity",
    "nfcorpus",
    "robust04",
    "scifact",
    "signal1m",
    "trec-covid",
    "trec-news",
    "webis-touche2020",
)


def other_topics(data: Path) -> dict[str, Path]:
    """Every shipped topics file but DL19's and ArguAna's, by the name that prefixes its qids."""
    beir = {name: data / f"beir/topics.beir-v1.0.0-{name}.test.tsv.gz" for name in BEIR_TOPIC_SETS}
    return {"dl20": data / "msmarco-passage/topics.dl20.txt", **beir}


def passage_text(title: str, text: str) -> str:
    """BEIR documents as the rerankers see them; title-less passages (MS MARCO) stay plain text."""
    return beir_passage_text(title, text) if title else text


def run(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="perank build-small-mix", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--output-dir", type=Path, default=Path("work_train"))
    ap.add_argument("--val-queries", type=int, default=100, help="ArguAna queries held out for validation")
    ap.add_argument("--topk", type=int, default=100)
    ap.add_argument("--query-words", type=int, default=40, help="ArguAna queries are cut to this many words")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    data = data_dir()

    dl19_topics = read_topics(data / "msmarco-passage/topics.dl19-passage.txt")
    dl19_qids = set(read_qrels(data / "msmarco-passage/qrels.dl19-passage.txt")) | set(dl19_topics)
    dl19_texts = held_out_texts([data / "msmarco-passage/topics.dl19-passage.txt"])

    # ArguAna over its own corpus, split into train / validation queries.
    arg_corpus = data / "beir/arguana/corpus.jsonl.gz"
    arg_docs = list(read_corpus(arg_corpus))
    full_queries = read_topics(data / "beir/arguana/queries.jsonl.gz")
    arg_topics = {q: " ".join(t.split()[: args.query_words]) for q, t in full_queries.items()}
    qids = sorted(arg_topics)
    random.Random(args.seed).shuffle(qids)
    val = set(qids[: args.val_queries])
    arg_texts = {d: passage_text(t, x) for d, t, x in arg_docs}
    arg_index = build_bm25s_index(arg_docs)
    for name, chosen in (("arguana_val", val), ("arguana_train", set(qids) - val)):
        topics = {q: arg_topics[q] for q in qids if q in chosen}
        requests = search_topics(
            topics, bm25s_batches(arg_index), lambda h: arg_texts[h.docid], args.topk, remove_query=True, desc=name
        )
        write_retrieval_results(out / f"{name}.jsonl", requests)
        print(f"{name}: {len(requests)} queries", file=sys.stderr)

    # Every other topics file over ArguAna's documents plus the DL20 candidate passages.
    pool: dict[str, str] = {}
    for r in read_retrieval_results(data / "msmarco-passage/retrieve_results_dl20.json"):
        for c in r.candidates:
            pool.setdefault(f"msmarco:{c.docid}", c.text)
    mixed_docs = [(f"arguana:{d}", t, x) for d, t, x in arg_docs] + [(d, "", x) for d, x in pool.items()]
    mixed_texts = {d: passage_text(t, x) for d, t, x in mixed_docs}
    topics: dict[str, str] = {}
    for name, path in other_topics(data).items():
        for qid, text in read_topics(path).items():
            if name == "dl20" and qid in dl19_qids:
                raise SystemExit(f"refusing: {path} has DL19 query {qid}")
            if query_text_key(text) in dl19_texts:
                print(f"skipping {name}:{qid}, its text is a DL19 query", file=sys.stderr)
                continue
            topics[f"{name}:{qid}"] = text
    mixed_index = build_bm25s_index(mixed_docs)
    requests = search_topics(
        topics, bm25s_batches(mixed_index), lambda h: mixed_texts[h.docid], args.topk, remove_query=False, desc="mixed"
    )
    write_retrieval_results(out / "mixed.jsonl", requests)
    summary = {"arguana_train": len(qids) - len(val), "arguana_val": len(val), "mixed": len(requests)}
    print(json.dumps(summary), file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``perank build-small-mix``: :func:`run`, bad input or an unreadable file as one line and exit status 2."""
    return run_guarded(lambda: run(argv))
