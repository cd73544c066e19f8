"""DeAR's listwise LoRA reranker (``dear``) and its fine-tuning on teacher permutations (``listwise-sft``)."""
