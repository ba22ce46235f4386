"""`python -m ilyd` runs the command line."""

from ilyd.cli import main

raise SystemExit(main())
