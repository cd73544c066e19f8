"""The LLM yes/no family (``--reranker llm-yes-no``, alias ``bge-reranker-gemma``; ``--family llm-yes-no``).

- :mod:`perank.ranking.decoder_pairs`: FlagEmbedding's pair layout and the pointwise strategy over it (shared
  with ``llm-layerwise``, so it lives below both);
- :mod:`.reranker`: the registered pointwise reranker (score = the 'Yes' logit at the last token);
- :mod:`.training`: the LoRA fine-tuning runner (group cross-entropy on the 'Yes' logit);
- :mod:`.manifest`: what the family registers (read without importing the rest).
"""
