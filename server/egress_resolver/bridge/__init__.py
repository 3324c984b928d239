"""Below both the Lua runtime and the kumo API: moving values between Lua and Python."""
