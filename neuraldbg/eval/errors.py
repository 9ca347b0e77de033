"""The harness's one error type (kept import-light for the CLI)."""


class EvalError(RuntimeError):
    """A one-line failure of the whole evaluation (bad data, no model...)."""
