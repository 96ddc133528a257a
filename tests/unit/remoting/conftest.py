"""Fixtures of the remoting unit tests."""

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from remoting_support import Behaviour, FakePeer, answer_success


@pytest.fixture
async def fake_peer() -> AsyncIterator[Callable[[Behaviour], Awaitable[FakePeer]]]:
    """Factory: `peer = await fake_peer(behaviour)` starts a FakePeer that is stopped after the test."""
    peers: list[FakePeer] = []

    async def start(behaviour: Behaviour = answer_success) -> FakePeer:
        peer = FakePeer(behaviour)
        await peer.start()
        peers.append(peer)
        return peer

    yield start
    for peer in peers:
        await peer.stop()
