"""`Http2Connection` in memory (issue 12), driven by `support.h2_client.Client`.

Tests here may be `async def`: each runs on a fresh event loop (`pytest_pyfunc_call` below), as
the connection arms timers with the running loop, as it does on a server.
"""

from __future__ import annotations

import asyncio
import inspect

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        asyncio.run(pyfuncitem.obj(**arguments))
        return True
    return None
