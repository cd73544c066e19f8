"""The shared ranking core, free of any model: the reranker interface and registry, and the strategies.

- :mod:`~perank.ranking.base`: :class:`BaseReranker`, :func:`reorder` (the one way to build a result);
- :mod:`~perank.ranking.inputs` and :mod:`~perank.ranking.budgets`: what ``BaseReranker.rerank`` does before any
  model runs (the API's input checks; every family's query and passage budgets);
- :mod:`~perank.ranking.family`, :mod:`~perank.ranking.catalogue`, :mod:`~perank.ranking.registry`: a family's
  manifest, the one catalogue of built-in and installed families, and :func:`build_reranker`,
  :func:`available_rerankers` over it;
- :mod:`~perank.ranking.pointwise`: :class:`PointwiseReranker` (score pairs, sort);
- :mod:`~perank.ranking.sliding_window`: :class:`WindowReranker` (batched sliding windows), :class:`QueryState`
  and the window schedule;
- :mod:`~perank.ranking.parsing`, :mod:`~perank.ranking.prompting`: the permutation parser, and prompt text
  hygiene.
"""
