"""Hatchling metadata hook of the egress-resolver (server) distribution.

Hand-written because hatchling has no static way to say "depend on
egress-resolver-client at my own version": the pin is computed here from the
version hatchling read from client/python/egress_client/_version.py, so the
two distributions always move together.
"""

from typing import Any

from hatchling.metadata.plugin.interface import MetadataHookInterface


class PinClientHook(MetadataHookInterface):
    """Sets the dependencies: the configured list plus the client at this version."""

    def update(self, metadata: dict[str, Any]) -> None:
        own = list(self.config["dependencies"])
        metadata["dependencies"] = [*own, f"egress-resolver-client=={metadata['version']}"]
