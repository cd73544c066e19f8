"""The benchmark harness: one package, one module (or subpackage) per benchmark, run by ``benchmarks/run.py``.

Shared by the benchmarks:

- :mod:`~perank_bench.cli`: the table of benchmarks and the dispatch (``run.py NAME [options]``);
- :mod:`~perank_bench.paths`: the repository, the results folder, the default checkpoints (anchored on this
  package, never on the working directory);
- :mod:`~perank_bench.workers`: one configuration in a fresh process, and the machine the record names;
- :mod:`~perank_bench.data`: the timed queries and their nDCG@10;
- :mod:`~perank_bench.measures`: percentiles, peak memory, means of the rerankers' own counters;
- :mod:`~perank_bench.plot`: number formatting and the nDCG@10-against-seconds plot.

The benchmarks, each with its configuration: :mod:`~perank_bench.rerank_latency` (``configs``: the PE-Rank and
text configurations, the synthetic shapes), :mod:`~perank_bench.families` (``configs``: one configuration per
family and setting), :mod:`~perank_bench.long_inputs`, :mod:`~perank_bench.compare_runs` and
:mod:`~perank_bench.arguana_bm25`.
"""
