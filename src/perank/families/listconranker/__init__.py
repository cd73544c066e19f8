"""ListConRanker (ByteDance, arXiv 2501.07111): a listwise reranker over separately embedded texts.

Not a token-level cross-encoder: the query and each passage are embedded on their own by a BERT-type encoder
(mean pooling), projected, and a small transformer then reads the whole list ``[query, p1, ..., pn]`` at once,
so each passage is scored in the context of the others. Modules: ``model`` (the architecture and its
checkpoint layout), ``checkpoint`` (finding and checking a folder), ``iterative`` (the published
iterative-inference schedule), ``reranker`` (the registered ``listconranker`` reranker), ``training`` (the
``--family listconranker`` runner, Circle Loss). Besides the published architecture, perank's residual mode
(``model``'s docstring) adds the list transformer to the embedder's own embedding through an output layer that
starts at zero, so an untrained model ranks exactly as the embedder's cosine.
"""
