"""The exact prompt texts of llm-rankers (REFERENCE-families.md section 5) and how an answer is read.

Texts are byte for byte llm-rankers' (``llmrankers/pointwise.py``, ``pairwise.py``, ``setwise.py``). For a
decoder-only LLM, llm-rankers renders the prompt as one user turn of the chat template with the assistant turn
opened and appends :data:`ANSWER_PREFIX`, then reads ONE greedily generated token: decoded, stripped and
upper-cased, it must be a label (``A``/``B`` pairwise, ``A``-``W`` setwise).
"""

from __future__ import annotations

from collections.abc import Sequence

POINTWISE_YES_NO = "Passage: {text}\nQuery: {query}\nDoes the passage answer the query? Answer 'Yes' or 'No'"
POINTWISE_QLM = "Passage: {text}\nPlease write a question based on this passage."

PAIRWISE = """Given a query "{query}", which of the following two passages is more relevant to the query?

Passage A: "{doc1}"

Passage B: "{doc2}"

Output Passage A or Passage B:"""

SETWISE_HEAD = 'Given a query "{query}", which of the following passages is the most relevant one to the query?\n\n'
SETWISE_TAIL = "\n\nOutput only the passage label of the most relevant passage:"

#: setwise labels; llm-rankers stops at W ("Passage X"/"Passage Y" tokenize into more tokens)
LABELS = "ABCDEFGHIJKLMNOPQRSTUVW"
#: appended after the rendered chat prompt of a decoder-only LLM, so that its next token is the label
ANSWER_PREFIX = " Passage:"
#: the tokens whose logits give the pointwise yes/no score (their first token each, as llm-rankers encodes them)
YES, NO = "Yes", "No"


def yes_no_prompt(query: str, text: str) -> str:
    return POINTWISE_YES_NO.format(text=text, query=query)


def qlm_prompt(text: str) -> str:
    return POINTWISE_QLM.format(text=text)


def pairwise_prompt(query: str, doc1: str, doc2: str) -> str:
    return PAIRWISE.format(query=query, doc1=doc1, doc2=doc2)


def setwise_prompt(query: str, passages: Sequence[str]) -> str:
    if len(passages) > len(LABELS):
        raise ValueError(f"a setwise prompt labels at most {len(LABELS)} passages, got {len(passages)}")
    body = "\n\n".join(f'Passage {LABELS[i]}: "{text}"' for i, text in enumerate(passages))
    return SETWISE_HEAD.format(query=query) + body + SETWISE_TAIL


def parse_label(answer: str, size: int) -> int | None:
    """The passage an answer names: llm-rankers strips and upper-cases the decoded token and looks it up among
    the labels; ``None`` when it is not one of the first ``size`` labels."""
    label = answer.strip().upper()
    if len(label) == 1 and label in LABELS[:size]:
        return LABELS.index(label)
    return None
