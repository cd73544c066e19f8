"""The dense bi-encoder family (``--reranker dense``): cosine of sentence-transformers embeddings.

- :mod:`.reranker`: the pointwise reranker and the packaged MiniLM default;
- :mod:`.manifest`: what the family registers.
"""
