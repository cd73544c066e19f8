"""Rerank latency benchmark: does PE-Rank's one-token-per-passage actually make ranking faster?

Measures, in one run and on the same machine, each configuration in its own fresh subprocess (so that peak
memory is per configuration):

- ``pe-rank``                      PE-Rank, greedy decoding with a KV cache, one query per call
- ``pe-rank-whole-prompts``        ``pe-rank`` without reusing the prompt prefix its windows share (the gain)
- ``pe-rank-single-pass``          PE-Rank, single-pass decoding, one query per call
- ``pe-rank-batched``              PE-Rank, greedy, ``--batch-size`` queries per call
- ``pe-rank-single-pass-batched``  PE-Rank, single-pass, ``--batch-size`` queries per call
- ``listwise-text-embedding``      passage tokens *and* their text in the prompt, greedy, one query per call
- ``listwise-text``                the uncompressed RankGPT-style text baseline (``--text-queries`` queries)
- ``pe-rank-cached``               (only with ``--embedding-cache``) PE-Rank greedy with a warm embedding cache

For each: per-query latency (median, p90: the wall time of the call that returned the query, so for batched
configurations every query of a batch waits for the whole batch), queries per second (queries / total wall time,
which is what batching improves), LLM tokens processed and generated per query (means of the rerankers' own
``stats``), peak RSS of the process (MB; includes loading the model), on CUDA ``torch.cuda.max_memory_allocated``,
and nDCG@10 of the queries run. One warm-up query runs first and is excluded. PE-Rank configurations also get a
time breakdown (encoder / LLM prefill / LLM decode steps / the rest = Python, projector, tokenisation) from
forward hooks.

Examples (see benchmarks/README.md)::

    # CPU, the small PE-Rank (trained if checkpoints/pe-rank-smollm2-minilm exists, else assembled untrained)
    python benchmarks/run.py rerank_latency --tag cpu --queries 43 --text-queries 10
    # H100, random-weight Mistral-7B + BERT-base shapes (timings do not depend on weight values)
    python benchmarks/run.py rerank_latency --synthetic mistral-7b --device cuda --tag h100 --queries 43 --batch-size 43

Modules: ``configs`` (the configurations and synthetic shapes), ``synthetic`` (random-weight models),
``models`` (default checkpoint), ``breakdown`` (forward-hook timings, profiler), ``worker`` (one configuration),
``driver`` (the configurations in turn, each in its own process: :mod:`perank_bench.workers`), ``report``
(JSON, markdown, ratios), ``cli`` (the command line). The queries, measures and plot are the harness's
(:mod:`perank_bench.data`, :mod:`perank_bench.measures`, :mod:`perank_bench.plot`).
"""
