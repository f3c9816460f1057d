"""Fixtures of the in-memory HTTP/1.1 protocol tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from support.http1_connection import Connection


@pytest.fixture
def connect() -> Iterator[Callable[..., Connection]]:
    """Builds Connections (HttpLimits fields as keywords) and closes their loops afterwards."""
    made: list[Connection] = []

    def make(**kwargs) -> Connection:
        connection = Connection(**kwargs)
        made.append(connection)
        return connection

    yield make
    for connection in made:
        connection.close()
