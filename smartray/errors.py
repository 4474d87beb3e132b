"""Errors smartray raises on purpose.

Each takes one message argument, so it pickles across Ray workers. A message says what
went wrong, where, and what to do next.
"""


class SmartrayError(Exception):
    """Base of every error smartray raises on purpose."""


class ConfigError(SmartrayError, ValueError):
    """A flag, setting or config file is invalid; nothing was written."""


class SchemaMismatchError(SmartrayError):
    """Rows or a stored table do not match the table's declared schema."""


class TableNotFoundError(SmartrayError, LookupError):
    """A lake table that was asked for does not exist (yet)."""


class UnknownTableError(SmartrayError, KeyError):
    """A table name that the catalog does not declare; the message lists those it does."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CommitError(SmartrayError):
    """A commit to a lake table failed after its retries; nothing was committed."""


class SourceError(SmartrayError):
    """A source (folder, file, bucket) cannot be listed at all."""
