"""What differs between the engines a source can live on, one small module per engine.

The pipeline itself is one set of Ibis expressions that DuckDB, PostgreSQL and Spark all run
(parity is proven by the tests). What is left here is only how each engine is reached: connecting,
the messages for a refused connection or a missing runtime, and where its tables are found.

- DuckDB (``klantwaarde.sources``): a folder of CSV/Parquet files or a ``.duckdb`` file.
- PostgreSQL (``postgres``): ``postgresql://user[:password]@host[:port]/database[?schema=S]``.
- Spark (``spark``): ``spark:<folder>`` of Parquet tables, or ``spark:<catalog.schema>``.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redacted(url: str) -> str:
    """``url`` with its password replaced by ``***``: what messages and reports show."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))
