"""Logging set-up for the CLI and for Airflow tasks, done once.

Modules log through ``logging.getLogger(__name__)`` with %-style arguments and never log
secrets or author names. The CLI shows warnings and errors by default, ``-v`` adds progress
messages and ``--debug`` everything; Airflow tasks keep Airflow's own handlers.
"""

from __future__ import annotations

import logging

from rich.console import Console
from rich.logging import RichHandler

_configured = False


def setup_logging(verbosity: int = 0, *, debug: bool = False) -> None:
    """Send Earful's log records to stderr at a level chosen by ``-v`` / ``--debug``."""
    global _configured
    level = logging.DEBUG if debug else logging.INFO if verbosity > 0 else logging.WARNING
    root = logging.getLogger("earful")
    root.setLevel(level)
    if not _configured:
        handler = RichHandler(
            console=Console(stderr=True),
            show_path=False,
            show_time=False,
            markup=False,
            rich_tracebacks=False,
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
        root.propagate = False
        _configured = True
    # Third-party libraries stay quiet unless debugging.
    for name in ("alembic", "sqlalchemy.engine"):
        logging.getLogger(name).setLevel(logging.INFO if debug else logging.WARNING)
