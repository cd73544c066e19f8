"""The jina-listwise family (``--reranker jina-listwise``): jina-reranker-v3's listwise "last but not late
interaction", the query and a block of candidates in one causal prompt, scored by cosine at marker tokens.

- :mod:`.prompts`: the published prompt and its two marker tokens;
- :mod:`.blocks`: truncation of the query and candidates, and the split of a long list into blocks;
- :mod:`.model`: the published checkpoint in transformers' Qwen3 decoder plus the projector (no remote code), its
  differentiable forward over a batch of prompts, and the merge of a list's blocks;
- :mod:`.trained`: the small saved layout of a model trained here (adapter, marker rows, projector), which the
  model module loads too;
- :mod:`.reranker`: the registered reranker;
- :mod:`.training`: ``src/train.py --family jina-listwise``.
"""
