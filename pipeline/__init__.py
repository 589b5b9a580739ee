"""Earful's pipeline: everything between the spiders and the models.

Configuration, the database schema and its migrations, storing mentions, classification
runs, reports, alerts and the ``earful`` command line. One module per concept; the CLI is a
thin layer over functions that the tests and the Airflow DAGs call directly.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("earful")
except PackageNotFoundError:  # pragma: no cover - only when run from a bare source tree
    __version__ = "0+unknown"

__all__ = ["__version__"]
