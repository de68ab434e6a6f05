import sys

from mialaw.paper.cli import main

sys.exit(main())
