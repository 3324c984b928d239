"""The version of both Python distributions, egress-resolver and egress-resolver-client.

This line is the one place it is written: both pyproject.toml files read it
(hatchling's regex version source), and the server's wheel pins
``egress-resolver-client==`` to it (hatch_build.py). tests/packages checks
that the npm package and the Rust crate carry the same version.
"""

__version__ = "0.1.0"
