import sys

from qcluster.cli import main

sys.exit(main())
