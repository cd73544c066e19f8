"""E2Rank: a text-embedding model as a listwise reranker (the listwise prompt embedded as an enriched query)."""
