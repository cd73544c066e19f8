"""The LLM yes/no family (``--reranker llm-yes-no``, alias ``bge-reranker-gemma``; ``--family llm-yes-no``).

- :mod:`.inputs`: FlagEmbedding's decoder-reranker pair layout and truncation, on token ids (shared with
  ``llm-layerwise``);
- :mod:`.reranker`: the registered pointwise reranker (score = the 'Yes' logit at the last token);
- :mod:`.training`: the LoRA fine-tuning runner (group cross-entropy on the 'Yes' logit);
- :mod:`.manifest`: what the family registers (read without importing the rest).
"""
