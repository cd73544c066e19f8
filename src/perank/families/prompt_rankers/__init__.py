"""Prompt-based LLM rerankers as llm-rankers (ielab) runs them: pointwise, pairwise and setwise.

``prompts`` holds the exact texts and the answer parsing (the policy), ``common`` the model loading and the
options the three families share, and ``pointwise``/``pairwise``/``setwise`` combine a policy with the
strategies of :mod:`perank.ranking` and the backend :class:`perank.backends.lm.LanguageModel`.
"""

# importing the package registers its three families
# ruff: noqa: I001
import perank.families.prompt_rankers.pointwise  # noqa: F401
import perank.families.prompt_rankers.pairwise  # noqa: F401
import perank.families.prompt_rankers.setwise  # noqa: F401
