"""Prompt-based LLM rerankers as llm-rankers (ielab) runs them: pointwise, pairwise and setwise.

``prompts`` holds the exact texts and the answer parsing (the policy), ``common`` the model loading and the
options the three families share, ``reranker`` the three rerankers (``llm-pointwise``, ``llm-pairwise``,
``llm-setwise``), each combining a policy with a strategy of :mod:`perank.ranking` and the backend
:class:`perank.backends.lm.LanguageModel`; ``manifest`` registers them.
"""
