"""The blocking driver of `connect`: name resolution, sockets and handshakes under one deadline.

The steps and the classification are _connect.py's, the handshakes
_proxy.py's; _adial.py is the same for asyncio.
"""

from __future__ import annotations

import concurrent.futures
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
from egress_client._proxy import IP, Exchange, HandshakeError

_RESOLVER = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="egress-connect-dns")
"""getaddrinfo has no timeout of its own: it runs here, and is waited for until the deadline."""


def left(deadline: float) -> float:
    """Seconds until `deadline`; TimeoutError once it has passed."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    return remaining


def resolve(endpoint: Endpoint, deadline: float) -> list[IP]:
    """The addresses of `endpoint` (A and AAAA); OSError or TimeoutError."""
    if endpoint.ip is not None:
        return [endpoint.ip]
    future = _RESOLVER.submit(
        socket.getaddrinfo, endpoint.host, endpoint.port, 0, socket.SOCK_STREAM
    )
    try:
        return addresses(future.result(left(deadline)))
    except concurrent.futures.TimeoutError:
        raise TimeoutError from None


def dial(prepared: Prepared, deadline: float, timeout: float) -> socket.socket:
    """Steps 4 to 6: a connected blocking socket, or ConnectFailedError."""
    return first_connected(prepared, candidates(prepared, deadline, timeout), deadline, timeout)


def candidates(prepared: Prepared, deadline: float, timeout: float) -> list[Attempt]:
    """Step 4: the destination's and the proxy's addresses, resolved now, as candidates."""
    try:
        destinations = resolve(prepared.destination, deadline)
    except (OSError, TimeoutError) as err:
        raise prepared.resolve_failed(prepared.destination, err, timeout, proxy=False) from None
    proxies: list[IP] = []
    if prepared.proxy is not None:
        try:
            proxies = resolve(prepared.proxy, deadline)
        except (OSError, TimeoutError) as err:
            raise prepared.resolve_failed(prepared.proxy, err, timeout, proxy=True) from None
    return attempts(prepared, destinations, proxies)


def first_connected(
    prepared: Prepared, candidates: list[Attempt], deadline: float, timeout: float
) -> socket.socket:
    """Step 5: each candidate in turn until one connects; step 6 when none does."""
    tally = Tally(prepared)
    for attempt in candidates:
        if time.monotonic() >= deadline:
            break
        if not tally.skip(attempt):
            sock = _one(prepared, attempt, deadline, timeout, tally)
            if sock is not None:
                return sock
    raise tally.outcome()


def _one(
    prepared: Prepared, attempt: Attempt, deadline: float, timeout: float, tally: Tally
) -> socket.socket | None:
    """One candidate: the socket connected (and its handshake done), or None
    with the failure in `tally`."""
    sock = bound_socket(prepared, attempt, tally)
    if sock is None:
        return None
    connected = False
    try:
        step = "connecting"
        try:
            sock.settimeout(left(deadline))
            ip, port = attempt.transport
            sock.connect((str(ip), port))
            if attempt.handshake is not None:
                step = "during the proxy handshake"
                run(sock, attempt.handshake(), deadline)
        except TimeoutError:
            tally.failed(attempt, deadline_cause(timeout, step))
            return None
        except HandshakeError as err:
            tally.failed(attempt, str(err))
            return None
        except OSError as err:
            tally.failed(attempt, step_cause(step, err))
            return None
        sock.settimeout(None)
        connected = True
        return sock
    finally:
        if not connected:
            sock.close()


def run(sock: socket.socket, exchange: Exchange, deadline: float) -> None:
    """Play a handshake of _proxy.py on a blocking socket, within the deadline."""
    try:
        step = next(exchange)
        while True:
            if isinstance(step, bytes):
                sock.settimeout(left(deadline))
                sock.sendall(step)
                step = exchange.send(b"")
            else:
                step = exchange.send(receive(sock, step, deadline))
    except StopIteration:
        return


def receive(sock: socket.socket, size: int, deadline: float) -> bytes:
    """Exactly `size` bytes; HandshakeError when the proxy closes first."""
    data = bytearray()
    while len(data) < size:
        sock.settimeout(left(deadline))
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise HandshakeError("the proxy closed the connection during the handshake")
        data += chunk
    return bytes(data)
