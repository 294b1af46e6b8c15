"""`python -m dps_mqtt register ...`: the C CLI (dps_register) in Python."""

import sys

from ._cli import main

sys.exit(main(sys.argv[1:]))
