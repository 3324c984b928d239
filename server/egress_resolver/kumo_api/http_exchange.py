"""The aiohttp side of `kumo.http` (mod_http.py): the pooled session shared by
clients with the same options, the body read to the data source limit, the
finished response, and which failures count as the data source's.
"""

from __future__ import annotations

import aiohttp
from aiohttp import hdrs

from egress_resolver.definitions.errors import Reason
from egress_resolver.kumo_api.limits import DataSourceLimitError

CHUNK = 64 * 1024


async def read_body(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, read in chunks as it arrives; one over `limit` bytes (decompressed)
    closes the connection and raises: only the limit and one chunk are ever held."""
    declared = response.content_length
    if (
        declared is not None
        and declared > limit
        and not response.headers.get(hdrs.CONTENT_ENCODING)
    ):
        response.close()
        raise DataSourceLimitError("the response body", limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(CHUNK):
        size += len(chunk)
        if size > limit:
            chunks.clear()
            response.close()  # the rest is never read; the connection is not reused
            raise DataSourceLimitError("the response body", limit)
        chunks.append(chunk)
    return b"".join(chunks)


def classify_failure(err: BaseException) -> Reason | None:
    if isinstance(err, DataSourceLimitError):
        return Reason.DATA_SOURCE_ERROR
    if isinstance(err, aiohttp.ServerTimeoutError | TimeoutError):
        return Reason.DATA_SOURCE_TIMEOUT
    if isinstance(err, aiohttp.InvalidURL):
        return None
    if isinstance(err, aiohttp.ClientError | OSError):
        return Reason.DATA_SOURCE_ERROR
    return None


class Pool:
    """One aiohttp session, made on the I/O loop at first use (it must be)."""

    def __init__(self, user_agent: object, idle: float, verify: bool) -> None:
        self._options = (user_agent, idle, verify)
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            agent, idle, verify = self._options
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": str(agent)} if agent is not None else None,
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=idle, ssl=verify),
                trust_env=False,
                timeout=aiohttp.ClientTimeout(total=None),  # each request's own, around it
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class Response:
    """A response read to its end by `send`."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes, charset: str) -> None:
        self.status, self.headers, self.body, self.charset = status, headers, body, charset
