import sys

from hwkit.cli import main

sys.exit(main())
