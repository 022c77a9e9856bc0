import sys

from rental_operator import cli

sys.exit(cli.main())
