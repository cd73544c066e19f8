"""The BGE cross-encoder family (``--reranker cross-encoder``, alias ``bge-reranker``; ``--family cross-encoder``).

- :mod:`.inputs`: pair tokenisation and truncation exactly as FlagEmbedding (inference and training budgets);
- :mod:`.model`: finding and loading a one-label ``AutoModelForSequenceClassification`` (other folders refused);
- :mod:`.reranker`: the registered pointwise reranker (score = the head's logit);
- :mod:`.training`: the training runner (group cross-entropy, optional distillation);
- :mod:`.manifest`: what the family registers (read without importing the rest).
"""
