"""PE-Rank: passages enter the LLM as one embedding token each (Liu et al. 2024).

Everything of the family lives here: the model (:mod:`.model`, :mod:`.projector`; the settings that shape a
new one, shared by assemble and training, in :mod:`.settings`), released and perank
checkpoint layouts (:mod:`.checkpoint`), the prompts (:mod:`.prompts`), the KV-cached constrained decoding
(:mod:`.decoding`), the rerankers ``pe-rank`` and ``listwise-text-embedding`` (:mod:`.reranker`) and its two
training stages (:mod:`.training`).
"""
