"""The gRPC service: methods, caches, warm reloads, invalidations, drain,
reflection and listeners."""
