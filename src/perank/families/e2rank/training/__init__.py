"""``src/train.py --family e2rank``: E2Rank's joint objective on any sentence-transformers embedder, as LoRA.

E2Rank (arXiv 2510.22733; Alibaba-NLP/E2Rank ``src/modeling.py``) trains one embedder on two losses at once: the
InfoNCE of the plain query against the teacher's top candidate (the other candidates of the batch are the
negatives) and RankNet on the cosines of the candidates with the pseudo-query (the listwise prompt of the query
and its first ``k`` candidates), ordered as the teacher ranks them. Modules: ``arguments`` (flags), ``data``
(``perank build-rank-data`` rows, the same teacher lists PE-Rank's small model trains on), ``losses`` (the two
losses), ``trainer`` (the Trainer computing them, whose saves are loadable adapter folders), ``runner``.
"""
