"""``src/train.py --family jina-listwise``: jina-reranker-v3's listwise scorer trained as LoRA on a causal LM.

The model is the reranker's own (:class:`perank.families.jina_listwise.model.JinaListwiseModel`): one causal
prompt per teacher-ranked list, built by the reranker's prompt code, and the cosines of the candidates' marker
vectors with the query marker's, through a fresh projector. Modules: ``arguments`` (flags), ``model`` (the base
with the two markers added and LoRA, the projector), ``data`` (prompts from ``perank build-rank-data`` rows),
``losses`` (in-list InfoNCE + RankNet), ``trainer`` (the Trainer, whose saves are the small layout the reranker
loads: :mod:`perank.families.jina_listwise.trained`), ``runner``.
"""
