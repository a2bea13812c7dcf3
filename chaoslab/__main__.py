"""`python -m chaoslab`: the same as the `chaoslab` command."""

from chaoslab.cli import main

raise SystemExit(main())
