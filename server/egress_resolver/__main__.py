"""`python -m egress_resolver` runs the CLI."""

import sys

from egress_resolver.cli import main

sys.exit(main())
