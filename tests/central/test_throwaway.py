"""tests.central.throwaway: the one throwaway PostgreSQL database of the central tests and benchmarks."""

from __future__ import annotations

import pytest

psycopg = pytest.importorskip("psycopg")

from tests.central.conftest import ADMIN_URL  # noqa: E402
from tests.central.throwaway import throwaway_database  # noqa: E402


def test_a_database_of_its_own_dropped_even_with_a_connection_left_open() -> None:
    try:
        psycopg.connect(ADMIN_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        pytest.skip(f"no PostgreSQL at {ADMIN_URL}: {exc}")
    with throwaway_database(ADMIN_URL, "throwaway_test") as url:
        name = url.rsplit("/", 1)[1]
        assert name.startswith("throwaway_test_")
        left_open = psycopg.connect(url)   # a server process that outlived its test
        assert left_open.execute("SELECT current_database()").fetchone() == (name,)
    with psycopg.connect(ADMIN_URL) as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone() == (0,)
    with pytest.raises(psycopg.OperationalError):   # its server process was terminated
        left_open.execute("SELECT 1")
    left_open.close()
