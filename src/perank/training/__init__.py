"""What every family's training shares, written once.

- :mod:`.runner`: the abstract :class:`~.runner.TrainingRunner` (parse, validate, CPU downgrade, resume,
  build model/dataset/Trainer, train, save) and the runner registry behind ``src/train.py --family NAME``;
- :mod:`.hardware`: the one CPU downgrade of GPU-only settings;
- :mod:`.arguments`: the argument dataclasses families share (LLM loading, LoRA, legacy flags);
- :mod:`.lora`: LoRA on a causal LM from those flags;
- :mod:`.jsonl`: training JSONL with file:line errors, all bad rows reported at once;
- :mod:`.chat`: chat rendering with the loss on assistant turns only;
- :mod:`.ranked_lists`, :mod:`.rank_losses`: teacher-ranked lists (rows, held-out refusal, slates) and the
  listwise losses on them, for the families that train on lists (``e2rank``, ``jina-listwise``);
  :mod:`.ranked_list_runner`: their shared runner base (data flags and checks) and training flags;
- :mod:`.logged_trainer`: the Trainer base that logs each loss part and ``step_seconds`` (those runners and the
  pair-group runners);
- :mod:`.pair_group_runner`: the runner, data flags and group cross-entropy Trainer of the families that score
  query groups pair by pair (cross-encoder, llm-yes-no, llm-layerwise); :mod:`.group_loss`: that loss, and its
  form over several heads per pair (llm-layerwise); :mod:`.llm_pairs`: what the two LLM ones share (LM and LoRA
  flags, the LM's loading, the decoder-pair collator).

Nothing is imported here, so that ``perank.training.runner`` stays cheap to import.
"""
