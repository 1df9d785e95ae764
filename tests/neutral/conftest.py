"""Every neutral scenario runs on SQLite and on PostgreSQL."""

import pytest


@pytest.fixture(autouse=True)
def _both_backends(backend: str) -> str:
    return backend
