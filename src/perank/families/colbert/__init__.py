"""ColBERT late interaction (``--reranker colbert``), as BAAI/bge-m3 computes its multi-vector score.

- :mod:`.model`: the encoder plus ``colbert_linear`` (bge-m3's layout, or an identity projection over a plain
  encoder), loading, saving and per-token vectors;
- :mod:`.scoring`: MaxSim over padded token vectors (pads masked, sums in fp32), shared by ranking and training;
- :mod:`.reranker`: the registered pointwise reranker (each distinct query and passage encoded once per call,
  passage vectors through the persistent embedding cache);
- :mod:`.loss` and :mod:`.training`: ``src/train.py --family colbert``.
"""
