"""Throw-away databases for the benchmarks: a SQLite file, or a PostgreSQL schema.

Shared by bench/store.py and bench/crawl.py (run as scripts, so this folder is on sys.path).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import make_url

from earful.pipeline.db import Database


@contextmanager
def postgres_place(base_url: str, label: str) -> Iterator[str]:
    """A fresh schema on the server, selected through the URL's ``search_path``; dropped
    (CASCADE) on the way out, whatever happened."""
    schema = f"earful_bench_{os.getpid()}_{secrets.token_hex(4)}_{label}"
    admin = Database(base_url)
    try:
        with admin.translate_errors(), admin.engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(admin.url.render_as_string(hide_password=False))
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            with admin.engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()


def check_postgres(base_url: str) -> None:
    """Fail before the long run, not after SQLite, when the server cannot be reached."""
    db = Database(base_url)
    try:
        with db.translate_errors(), db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        db.dispose()
