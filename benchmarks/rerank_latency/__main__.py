"""``python -m rerank_latency ...`` with ``benchmarks/`` on the path; also how the driver starts each worker."""

from .cli import main

if __name__ == "__main__":
    main()
