"""Every reranker family on one dataset: latency per query against nDCG@10 (issue 16, item 4).

One configuration per family and setting (``configs.FAMILY_CONFIGS``), each run in its own fresh process
(the harness's :func:`perank_bench.workers.run_in_subprocess`), built through the registry,
one warm-up call, then the timed queries one per call. Writes ``families_{tag}.json`` (entries, and the
configurations not run with their reasons), ``families_{tag}.md`` and ``families_{tag}.png`` (nDCG@10 against
median seconds per query, log x). Defaults: DL19, BM25 top-100, all 43 queries, CPU. See benchmarks/README.md.

Modules: ``configs`` (the configurations, ``--only``/``--skip``/``--set``), ``worker`` (one configuration),
``report`` (JSON, markdown, plot), ``cli`` (the driver and the worker mode).
"""
