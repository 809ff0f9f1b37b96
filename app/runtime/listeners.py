"""Stop a process's TCP listeners taking connections without resetting the ones the kernel
has already completed.

The kernel completes a TCP handshake before the server accepts it. Closing a listening socket
resets every connection still in its accept queue, and their clients have sent their requests
by then: a drain that just closes the listener drops them. So before the listener closes, a
socket filter that drops every packet is attached to it (new SYNs are dropped: the client
retries, then finds the port closed and is refused, its request never sent), and the event
loop goes on accepting until the queue is empty (``TCP_INFO`` of a listening socket gives the
queue's length). Linux only, as SO_REUSEPORT is; elsewhere this does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import socket
import struct
import time

SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)
# One classic BPF instruction, BPF_RET | BPF_K with k = 0: keep no byte of any packet.
_DROP_EVERY_PACKET = ctypes.create_string_buffer(struct.pack("HBBI", 0x06, 0, 0, 0))
_PROGRAM = struct.pack("HP", 1, ctypes.addressof(_DROP_EVERY_PACKET))
# struct tcp_info: eight one-byte fields, then rto, ato, snd_mss, rcv_mss, unacked (u32 each);
# for a listening socket "unacked" is the length of its accept queue.
_TCP_INFO_QUEUED = struct.Struct("8x4xIIII")


def listening_sockets() -> list[socket.socket]:
    """Duplicates of this process's listening TCP sockets (the caller closes them)."""
    found = []
    seen = set()  # the duplicates made here may take numbers the listing gave
    for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []:
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
            if not target.startswith("socket:") or target in seen:
                continue
            seen.add(target)
            sock = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue
        try:
            listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        except OSError:
            listening = 0
        tcp = sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM
        if listening and tcp:
            found.append(sock)
        else:
            sock.close()
    return found


def queued(sock: socket.socket) -> int:
    """Connections the kernel completed on this listener that nobody has accepted yet."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_QUEUED.size + 8)
    return int(_TCP_INFO_QUEUED.unpack_from(info)[-1])


def refuse_new_connections(sockets: list[socket.socket]) -> None:
    """New connections to these listeners are no longer completed (their SYNs are dropped)."""
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, _PROGRAM)


async def stop_accepting(timeout: float = 1.0) -> int:
    """Refuse new connections on every listener of this process, then wait (at most
    ``timeout``) while the event loop accepts those already queued. Returns how many were
    still queued when it gave up (0 when all were accepted)."""
    sockets = listening_sockets()
    try:
        refuse_new_connections(sockets)
        deadline = time.monotonic() + timeout
        while True:
            left = sum(queued(sock) for sock in sockets)
            if left == 0 or time.monotonic() > deadline:
                return left
            await asyncio.sleep(0.002)
    finally:
        for sock in sockets:
            sock.close()
