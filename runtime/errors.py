"""Errors a user can fix, each carrying the exit code the CLI uses for it."""


class Sam2TrtError(Exception):
    code = 3  # bad input


class ModelDirError(Sam2TrtError):
    """A model directory is missing, incomplete or inconsistent (its message says how to fix it)."""


class BackendUnavailable(Sam2TrtError, RuntimeError):
    """The requested backend cannot run here; the message names the missing package or device."""
