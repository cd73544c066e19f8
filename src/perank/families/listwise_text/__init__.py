"""Listwise reranking by text generation (RankGPT / PE-Rank's RankMistral baseline): ``listwise-text``."""
