"""``python -m grader.sandbox launch …``: the kernelspec's trusted launcher."""

import sys

from grader.sandbox.launcher import main

sys.exit(main())
