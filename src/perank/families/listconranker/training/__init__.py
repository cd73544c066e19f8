"""``src/train.py --family listconranker``: Circle Loss over query lists, in two stages (``runner``).

Stage 1 (``--freeze_embedder True``) trains the projection, list transformer and head over a frozen embedder;
stage 2 (the default, ``--freeze_embedder False``) trains everything, starting from stage 1's output folder.
``--residual_init True`` trains perank's residual model instead (one stage over the frozen embedder, starting from
its cosine ranking; ``--embedding_cache`` preloads the dense teacher's embeddings).
Modules: ``arguments`` (flags), ``data`` (lists sampled from FlagEmbedding-style query groups), ``losses``
(Circle Loss), ``model`` (the loss module and its Trainer), ``runner`` (the registered runner).
"""
