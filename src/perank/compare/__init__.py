"""``perank compare``: systems side by side on the same queries, with significance, per-query wins, cost and
order sensitivity, written as markdown, JSON, an HTML page and a plot (docs/compare.md).

- :mod:`.systems`: which runs the command line names, their names, the checks on them;
- :mod:`.measures`: the measures (``ndcg@10``, ``mrr@10``, ...) and their per-query values (pytrec_eval);
- :mod:`.stats`: paired t-test / randomization test, Holm, intervals, wins, Kendall's τ (scipy);
- :mod:`.cost`: cost per query from each run's accounting;
- :mod:`.order`: order sensitivity of a run against its shuffled-input twin;
- :mod:`.comparison`: all of it as one :class:`~.comparison.Comparison`;
- :mod:`.report`, :mod:`.html`, :mod:`.plot`: its tables, page and plot; :mod:`.cli`: the command.
"""
