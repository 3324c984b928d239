"""egress-resolver: a gRPC sidecar serving KumoMTA egress sources from a Lua policy.

The modules, one per role, are listed in the README (Repository).
"""
