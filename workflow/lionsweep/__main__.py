"""`python -m lionsweep`: the same command line as the `lionsweep` console script."""

from lionsweep.cli import main

raise SystemExit(main())
