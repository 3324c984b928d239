"""The policy runtime: one Lua thread, loaded policies, handlers as coroutines,
the revision of what was loaded, and offline checks."""
