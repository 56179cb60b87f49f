"""`python -m gateway` runs the command-line interface."""

from __future__ import annotations

from gateway.app import main

raise SystemExit(main())
