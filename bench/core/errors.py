"""Errors a user can fix: the CLI prints them as one line and exits 2, never with a traceback."""


class UserError(Exception):
    """Bad input: the message names the problem and the fix."""


class MissingBackendError(UserError):
    """An optional package or piece of hardware a device needs is absent."""
