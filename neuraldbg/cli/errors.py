"""The command line's one error type."""


class CliError(Exception):
    """A one-line error for the user."""
