"""DeAR's listwise LoRA reranker (``dear``) and its fine-tuning on teacher permutations (runner ``listwise-sft``,
also ``--family dear``); :mod:`.manifest` registers both."""
