"""`python -m egress_resolver` runs the CLI."""

import sys

from egress_resolver.ops.cli import main

sys.exit(main())
