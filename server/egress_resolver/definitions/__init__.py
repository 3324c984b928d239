"""Definitions: what a valid source or pool is (KumoMTA's rules and messages),
the error catalogue, and the wire format."""
