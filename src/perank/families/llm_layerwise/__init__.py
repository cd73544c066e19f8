"""The layerwise LLM family (``--reranker llm-layerwise``, alias ``bge-reranker-minicpm-layerwise``).

- :mod:`.reranker`: the registered pointwise reranker: which layer's head ranks, FlagEmbedding's
  ``compute_score`` over several cutoffs (inputs shared with ``llm-yes-no``, :mod:`perank.ranking.decoder_pairs`);
- :mod:`.training`: ``src/train.py --family llm-layerwise``, LoRA and a head per layer on a causal LM, saved as a
  small folder the reranker loads.

The model is a language-model handle with ``layer_scores`` (:mod:`perank.backends.layerwise_lm`: the published
checkpoint layout in perank's own MiniCPM forward, or its own code with ``trust_remote_code``; a model trained here,
:mod:`perank.backends.layer_heads`).
"""
