"""Training-data builders: the commands that turn candidates and a teacher into the rows the runners read.

- :mod:`~perank.tools.data.alignment_rows` (``perank build-alignment-data``): stage-1 rows, a passage to
  reconstruct from its embedding token;
- :mod:`~perank.tools.data.rank_windows` (``perank build-rank-data``): stage-2 windows in teacher order;
- :mod:`~perank.tools.data.pair_groups` (``perank build-pair-data``): FlagEmbedding query groups;
- :mod:`~perank.tools.data.small_mix` (``perank build-small-mix``): the candidate lists of the small models' mix;
- :mod:`~perank.tools.data.mix_rows` (``perank mix-train-rows``): several row files into one, capped per query.

None of them ever trains on DL19, the held-out test set (:mod:`perank.training.holdout`).
"""
