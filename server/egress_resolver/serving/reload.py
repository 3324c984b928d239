"""Reloader: one reload, from loading the policy file to letting the old entries go.

A reload builds a new runtime from the policy file while the old one serves
(`PolicyRunner.prepare`). The first policy is committed as it is. Any later
one is warmed first: the most used cached names are re-resolved with it
(warm.py), then policy and caches are swapped at once, with no await between
the swap and the announcement of what changed, and the old entries are
released a slice at a time. On failure the last good policy keeps serving.
Reloads run one at a time, so each warms against the one before.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from egress_resolver.runtime.policy_runner import Policy, PolicyRunner
from egress_resolver.serving.invalidations import InvalidationHub
from egress_resolver.serving.warm import Warmer, release


class Reloader:
    """Loads the policy again and swaps it in, warm."""

    def __init__(
        self,
        runner: PolicyRunner,
        warmer: Warmer,
        invalidations: InvalidationHub,
    ) -> None:
        self._runner = runner
        self._warmer = warmer
        self._invalidations = invalidations
        self._one_at_a_time = asyncio.Lock()
        self._log = structlog.get_logger("egress_resolver")

    async def reload(self, warm_names: int) -> bool:
        """Load the policy again; on success re-resolve the `warm_names` most
        recently used cached names with it, then swap policy and caches at once
        and announce what changed. False when the policy failed to load (the
        runner logged why)."""
        async with self._one_at_a_time:
            started = time.monotonic()
            policy = await self._runner.prepare()
            if policy is not None:
                if self._runner.current is None:
                    self._runner.commit(policy)
                    self._invalidations.start(policy.revision, self._runner.generation)
                else:
                    await self._warm_swap(policy, warm_names, started)
        return policy is not None

    async def _warm_swap(self, policy: Policy, warm_names: int, started: float) -> None:
        """Re-resolve the cached names with `policy`, then swap policy and caches
        and announce what changed (warm.py); log how long it took."""
        prepared = time.monotonic()
        try:
            plan = await self._warmer.warm(policy, warm_names)
        except BaseException:
            self._warmer.abandon()
            raise
        swap = self._warmer.install(plan)  # from here to publish: no await
        self._runner.commit(policy)
        self._invalidations.publish(
            names=swap.stale_sources,
            pools=swap.stale_pools,
            everything=swap.everything,
            revision=policy.revision,
            generation=self._runner.generation,
        )
        swapped = time.monotonic()
        self._log.info(
            "reload warmed",
            seconds=round(swapped - started, 3),
            load_seconds=round(prepared - started, 3),
            re_resolve_seconds=round(swapped - prepared, 3),
            re_resolved=plan.re_resolved,
            changed=plan.changed,
            dropped=plan.dropped,
            announced=len(swap.stale_sources) + len(swap.stale_pools),
            all=swap.everything,
            generation=self._runner.generation,
        )
        del plan
        await release(*swap.old)
        self._log.info("reload released", seconds=round(time.monotonic() - swapped, 3))
