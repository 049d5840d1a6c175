import sys

from avdit.cli import main

sys.exit(main())
