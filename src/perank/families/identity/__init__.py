"""The identity family (``--reranker identity``): the first stage's order kept, the BM25 row of every table.

- :mod:`.reranker`: the reranker (no model, no query read);
- :mod:`.manifest`: what the family registers.
"""
