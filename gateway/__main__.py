"""`python -m rental_gateway`: the entry point the demo script and the process tests start."""

from . import cli

raise SystemExit(cli.main())
