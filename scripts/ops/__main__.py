"""``python -m scripts.ops``: the runbook entrypoint."""

from scripts.ops.cli import main

raise SystemExit(main())
