"""Every error Earful raises on purpose, in one tree.

The CLI catches :class:`EarfulError` at its edge and prints one ``Error: ...`` line (``--debug``
shows the traceback); the DAGs let it fail the task. Catch at the level you care about::

    EarfulError
    ├── ConfigError            bad earful.yaml: names the key and the line
    ├── StorageError
    │   ├── DatabaseUnavailable    cannot connect, or the database is locked
    │   └── MigrationRequired      the database is at another revision than this Earful
    ├── InputError             a file to import cannot be read at all
    ├── CollectionError        SourceUnreachable, PageParseError (collection issue)
    ├── ModelError             ModelNotFound (classification issue)
    └── DeliveryError          an alert or report could not be sent (insight issue)

A message says what happened, where, and what to do next. Context rides on the exception as
attributes (``key``, ``line``, ``url``) so callers need not parse messages.
"""

from __future__ import annotations


class EarfulError(Exception):
    """Base class: anything Earful reports to a user as one readable line."""


class ConfigError(EarfulError):
    """The configuration file is missing, unreadable or invalid.

    ``key`` is the dotted path of the offending setting (``sources[2].start_urls``) and
    ``line`` its line in the file, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        line: int | None = None,
        path: str | None = None,
        more: str | None = None,
    ) -> None:
        self.key = key
        self.line = line
        self.path = path
        where = ""
        if key:
            where = f"{key}: "
        suffix = ""
        if line is not None and path:
            suffix = f" ({path} line {line})"
        elif line is not None:
            suffix = f" (line {line})"
        super().__init__(f"{where}{message}{suffix}" + (f"; also {more}" if more else ""))


class StorageError(EarfulError):
    """The database refused an operation."""


class DatabaseUnavailable(StorageError):
    """The database cannot be reached, or stays locked past the busy timeout."""


class MigrationRequired(StorageError):
    """The database schema is not at the revision this Earful expects.

    Earful never recreates or silently migrates a database: the message says which
    command brings it to the expected revision.
    """


class InputError(EarfulError):
    """A file given to Earful (an import, a saved page) cannot be read at all.

    Individual bad rows are not errors: they are reported and skipped.
    """


class CollectionError(EarfulError):
    """A source could not be collected."""


class ModelError(EarfulError):
    """A classifier could not be loaded or run."""


class ModelNotFound(ModelError):
    """The configured model (``classifier.model``) or taxonomy file does not exist."""


class DeliveryError(EarfulError):
    """An alert or a report could not be delivered on a channel."""
