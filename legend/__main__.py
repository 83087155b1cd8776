import sys

from legend.cli import main

sys.exit(main())
