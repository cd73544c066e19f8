"""The layerwise LLM family (``--reranker llm-layerwise``, alias ``bge-reranker-minicpm-layerwise``).

- :mod:`.modeling`: MiniCPM's forward pass with one score head per layer (no remote code needed);
- :mod:`.loading`: the published checkpoint layout (or its own code with ``trust_remote_code``);
- :mod:`.reranker`: the registered pointwise reranker (inputs shared with ``llm-yes-no``).
"""
