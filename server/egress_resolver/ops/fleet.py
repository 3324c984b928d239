"""Fleet invalidation: a Redis pub/sub channel that every sidecar of a fleet follows.

With `--invalidation-redis URL`, the sidecar subscribes to
`--invalidation-channel` (default `egress-resolver:invalidate`) with
redis-py's asyncio pub/sub client. A message is

- a source name (`PUBLISH egress-resolver:invalidate ip-1`), bare or as a
  JSON string (`"ip-1"`): that source;
- a JSON array of source names (`["ip-1", "ip-2"]`);
- a JSON object `{"names": [...], "pool_names": [...]}`: sources and pools
  (the fields of the Invalidate RPC; either may be left out);
- `*`: everything.

Messages that begin with `[`, `{` or `"` are read as JSON. Each is applied with
`App.invalidate`: the names leave the caches and are announced, exactly them,
on WatchInvalidations, so they reach every client of every sidecar. More than
MAX_NAMES names in one message drop everything instead (a WatchInvalidations
message with that many long names could exceed gRPC's message limit; `all`
is always a correct thing to tell a cache).

A message that is not one of these (bad JSON, bytes that are not UTF-8, a
non-string item, an empty or invalid name) is logged (`fleet message
ignored`) and changes nothing.

Missed messages: a sidecar that was not subscribed cannot know what was
published meanwhile, so each time the subscription is confirmed — the first
time after start too (its clients may hold entries from before a restart,
which a restart with the same revision would otherwise let them keep) and
after every reconnection — it drops everything and announces `all`. When the
connection breaks (or the server stops answering pings: a PING every
`ping_interval` when nothing arrives, and no answer by the next one ends the
session), it reconnects with exponential backoff from `BACKOFF_MIN` to
`BACKOFF_MAX` seconds, forever, and never takes the server down: lookups go
on while Redis is away.

Hand-written on top of redis-py's PubSub (rather than its own reconnect,
which resubscribes silently) because the moment of resubscribing is exactly
what must be seen, to announce `all`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Sequence

import redis.asyncio as aioredis
import redis.exceptions
import structlog
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from egress_resolver.definitions.errors import ResolveError
from egress_resolver.definitions.validation import check_name
from egress_resolver.serving.service import MAX_BATCH_NAMES

DEFAULT_CHANNEL = "egress-resolver:invalidate"
MAX_NAMES = MAX_BATCH_NAMES
BACKOFF_MIN = 0.1
BACKOFF_MAX = 5.0
PING_INTERVAL = 5.0
CONNECT_TIMEOUT = 2.0
_SHOWN = 200  # characters of an ignored message that go into the log

Invalidate = Callable[[Sequence[str], Sequence[str], bool], object]


class GarbageMessageError(ValueError):
    """A message that names nothing this sidecar can drop; the text says why."""


def parse_message(data: bytes) -> tuple[list[str], list[str], bool]:
    """(source names, pool names, everything) that one message asks to drop."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise GarbageMessageError("not UTF-8") from None
    if text == "*":
        return [], [], True
    if text[:1] not in ("[", "{", '"'):
        return [_name(text)], [], False
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise GarbageMessageError(f"not valid JSON: {err}") from None
    if isinstance(document, str):
        names, pools = [_name(document)], list[str]()
    elif isinstance(document, list):
        names, pools = _names(document, "the array"), list[str]()
    elif isinstance(document, dict):
        unknown = set(document) - {"names", "pool_names"}
        if unknown:
            raise GarbageMessageError(f"unknown keys {sorted(unknown)}; expected names, pool_names")
        names = _names(document.get("names", []), "names")
        pools = _names(document.get("pool_names", []), "pool_names")
    else:
        raise GarbageMessageError("JSON that is not a string, an array or an object")
    if not names and not pools:
        raise GarbageMessageError("no names")
    if len(names) + len(pools) > MAX_NAMES:
        return [], [], True
    return names, pools, False


def _names(value: object, where: str) -> list[str]:
    if not isinstance(value, list):
        raise GarbageMessageError(f"{where} is not an array")
    for item in value:
        if not isinstance(item, str):
            raise GarbageMessageError(f"{where} holds {json.dumps(item)[:40]}, not a string")
    return [_name(item) for item in value]


def _name(text: str) -> str:
    try:
        check_name(text)
    except ResolveError as err:
        raise GarbageMessageError(f"invalid name: {err.message}") from None
    return text


class FleetSubscriber:
    """Follows one Redis channel and applies its messages with `invalidate`."""

    def __init__(
        self,
        url: str,
        channel: str,
        invalidate: Invalidate,
        *,
        ping_interval: float = PING_INTERVAL,
        backoff: tuple[float, float] = (BACKOFF_MIN, BACKOFF_MAX),
    ) -> None:
        self.url = url
        self.channel = channel
        self._invalidate = invalidate
        self._ping_interval = ping_interval
        self._backoff_min, self._backoff_max = backoff
        self._delay = self._backoff_min
        self.subscribed = asyncio.Event()
        """Set while the subscription is confirmed (tests and health wait on it)."""
        self.subscriptions = 0
        """How many times the subscription was confirmed (each announced `all`)."""
        self.applied = 0
        self.ignored = 0
        self.failures = 0
        """Sessions that ended in an error (connect refused, lost, a PING unanswered)."""
        self._task: asyncio.Task[None] | None = None
        self._log = structlog.get_logger("egress_resolver.ops.fleet")

    def start(self) -> None:
        """Begin following the channel in the background."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="fleet")

    async def stop(self) -> None:
        """Unsubscribe and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.subscribed.clear()

    async def _run(self) -> None:
        while True:
            try:
                await self._session()
            except (redis.exceptions.RedisError, OSError) as err:
                self.failures += 1
                self._log.warning(
                    "fleet subscription lost",
                    channel=self.channel,
                    error=str(err) or type(err).__name__,
                    retry_in=self._delay,
                )
            except Exception:  # a bug here must not stop the invalidations for good
                self.failures += 1
                self._log.exception("fleet subscriber failed", retry_in=self._delay)
            self.subscribed.clear()
            await asyncio.sleep(self._delay)
            self._delay = min(self._delay * 2, self._backoff_max)

    async def _session(self) -> None:
        """One connection: subscribe, then apply messages until it breaks."""
        client = aioredis.Redis.from_url(
            self.url,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=max(CONNECT_TIMEOUT, self._ping_interval),
            socket_keepalive=True,
            retry=Retry(NoBackoff(), 0),  # this loop reconnects, and sees it
        )
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            pinged = False
            while True:
                message = await pubsub.get_message(timeout=self._ping_interval)
                if message is None:
                    if pinged:
                        raise redis.exceptions.ConnectionError(
                            f"no answer to PING within {self._ping_interval:g} s"
                        )
                    await pubsub.ping()
                    pinged = True
                    continue
                pinged = False
                self._handle(message)
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            await client.aclose()

    def _handle(self, message: dict[str, object]) -> None:
        kind = message.get("type")
        if kind == "subscribe":
            self.subscriptions += 1
            self._delay = self._backoff_min
            self._invalidate([], [], True)  # whatever was published while away
            self.subscribed.set()
            self._log.info(
                "fleet subscribed", channel=self.channel, subscriptions=self.subscriptions
            )
        elif kind == "message":
            data = message.get("data")
            assert isinstance(data, bytes)
            self._apply(data)

    def _apply(self, data: bytes) -> None:
        try:
            names, pools, everything = parse_message(data)
        except GarbageMessageError as err:
            self.ignored += 1
            self._log.warning(
                "fleet message ignored",
                channel=self.channel,
                reason=str(err),
                message=data[:_SHOWN].decode("utf-8", "backslashreplace"),
            )
            return
        self.applied += 1
        self._invalidate(names, pools, everything)
