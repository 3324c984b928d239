"""The asyncio driver of `connect`: _dial.py's steps on the event loop.

The socket is made, bound and connected by hand (asyncio.open_connection
cannot bind before connecting and also play a handshake on the raw socket),
then handed to asyncio.open_connection(sock=...) for the streams.
"""

from __future__ import annotations

import asyncio
import socket
import time

from egress_client._connect import (
    Attempt,
    Endpoint,
    Prepared,
    Tally,
    addresses,
    attempts,
    bound_socket,
    deadline_cause,
    step_cause,
)
from egress_client._dial import left
from egress_client._proxy import IP, Exchange, HandshakeError


async def resolve(endpoint: Endpoint, deadline: float) -> list[IP]:
    """The addresses of `endpoint` (A and AAAA); OSError or TimeoutError."""
    if endpoint.ip is not None:
        return [endpoint.ip]
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(left(deadline)):
        infos = await loop.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
    return addresses(infos)


async def dial(
    prepared: Prepared, deadline: float, timeout: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Steps 4 to 6: the streams of a connected socket, or ConnectFailedError."""
    sock = await first_connected(
        prepared, await candidates(prepared, deadline, timeout), deadline, timeout
    )
    try:
        return await asyncio.open_connection(sock=sock)
    except BaseException:
        sock.close()
        raise


async def candidates(prepared: Prepared, deadline: float, timeout: float) -> list[Attempt]:
    """Step 4: the destination's and the proxy's addresses, resolved now, as candidates."""
    try:
        destinations = await resolve(prepared.destination, deadline)
    except (OSError, TimeoutError) as err:
        raise prepared.resolve_failed(prepared.destination, err, timeout, proxy=False) from None
    proxies: list[IP] = []
    if prepared.proxy is not None:
        try:
            proxies = await resolve(prepared.proxy, deadline)
        except (OSError, TimeoutError) as err:
            raise prepared.resolve_failed(prepared.proxy, err, timeout, proxy=True) from None
    return attempts(prepared, destinations, proxies)


async def first_connected(
    prepared: Prepared, candidates: list[Attempt], deadline: float, timeout: float
) -> socket.socket:
    """Step 5: each candidate in turn until one connects; step 6 when none does."""
    tally = Tally(prepared)
    for attempt in candidates:
        if time.monotonic() >= deadline:
            break
        if not tally.skip(attempt):
            sock = await _one(prepared, attempt, deadline, timeout, tally)
            if sock is not None:
                return sock
    raise tally.outcome()


async def _one(
    prepared: Prepared, attempt: Attempt, deadline: float, timeout: float, tally: Tally
) -> socket.socket | None:
    """One candidate: the socket connected (and its handshake done), or None
    with the failure in `tally`."""
    loop = asyncio.get_running_loop()
    sock = bound_socket(prepared, attempt, tally)
    if sock is None:
        return None
    connected = False
    try:
        sock.setblocking(False)
        step = "connecting"
        try:
            async with asyncio.timeout(left(deadline)):
                ip, port = attempt.transport
                await loop.sock_connect(sock, (str(ip), port))
                if attempt.handshake is not None:
                    step = "during the proxy handshake"
                    await run(loop, sock, attempt.handshake())
        except TimeoutError:
            tally.failed(attempt, deadline_cause(timeout, step))
            return None
        except HandshakeError as err:
            tally.failed(attempt, str(err))
            return None
        except OSError as err:
            tally.failed(attempt, step_cause(step, err))
            return None
        connected = True
        return sock
    finally:
        if not connected:
            sock.close()


async def run(loop: asyncio.AbstractEventLoop, sock: socket.socket, exchange: Exchange) -> None:
    """Play a handshake of _proxy.py on a non-blocking socket (the caller bounds the time)."""
    try:
        step = next(exchange)
        while True:
            if isinstance(step, bytes):
                await loop.sock_sendall(sock, step)
                step = exchange.send(b"")
            else:
                step = exchange.send(await receive(loop, sock, step))
    except StopIteration:
        return


async def receive(loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int) -> bytes:
    """Exactly `size` bytes; HandshakeError when the proxy closes first."""
    data = bytearray()
    while len(data) < size:
        chunk = await loop.sock_recv(sock, size - len(data))
        if not chunk:
            raise HandshakeError("the proxy closed the connection during the handshake")
        data += chunk
    return bytes(data)
