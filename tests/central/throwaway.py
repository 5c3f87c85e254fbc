"""A database of its own on a shared PostgreSQL cluster, dropped afterwards: for the central tests and benchmarks.

    with throwaway_database("postgresql://postgres@127.0.0.1:5432/postgres", "central_test") as url:
        ...   # url: postgresql://postgres@127.0.0.1:5432/central_test_3f9a0c1b2d4e, as libpq spells it

The database is made from the cluster's maintenance database `admin_url` and dropped at the end, its remaining
connections (a server process that outlived its test) terminated first.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

__all__ = ["throwaway_database"]


@contextlib.contextmanager
def throwaway_database(admin_url: str, prefix: str) -> Iterator[str]:
    """Make a database named `<prefix>_<random>` and yield its libpq URL; drop it on the way out."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
