"""A listener told to stop accepting refuses new connections but keeps those the kernel has
already completed, so the drain can accept them before the listener closes."""

from __future__ import annotations

import asyncio
import socket

import pytest

from app.runtime import listeners


@pytest.fixture
def listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock
    sock.close()


def _connect(port: int, timeout: float) -> socket.socket | None:
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return None


def test_a_stopped_listener_keeps_its_queue_and_completes_no_new_connection(
    listener: socket.socket,
) -> None:
    port = listener.getsockname()[1]
    waiting = [_connect(port, 1.0) for _ in range(3)]
    assert all(waiting)
    found = listeners.listening_sockets()
    try:
        assert any(s.getsockname() == listener.getsockname() for s in found)
        (mine,) = (s for s in found if s.getsockname() == listener.getsockname())
        assert listeners.queued(mine) == 3
        listeners.refuse_new_connections([mine])
    finally:
        for sock in found:
            sock.close()
    # The handshake of a new client is never completed: its SYN is dropped.
    assert _connect(port, 0.3) is None
    # Those already queued are still there to accept, and can be answered.
    for client in waiting:
        assert client is not None
        client.sendall(b"ping")
        accepted, _ = listener.accept()
        assert accepted.recv(4) == b"ping"
        accepted.close()
        client.close()


def test_stop_accepting_waits_until_the_queue_is_accepted(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    clients = [_connect(port, 1.0) for _ in range(2)]

    async def drain() -> int:
        loop = asyncio.get_running_loop()
        listener.setblocking(False)

        async def accept_later() -> None:
            await asyncio.sleep(0.05)
            for _ in clients:
                conn, _ = await loop.sock_accept(listener)
                conn.close()

        accepting = asyncio.create_task(accept_later())
        left = await listeners.stop_accepting(timeout=2.0)
        await accepting
        return left

    assert asyncio.run(drain()) == 0
    for client in clients:
        assert client is not None
        client.close()
