"""Errors a user can fix. ``vcmr`` prints their message without a traceback."""


class VcmrError(Exception):
    """Bad input or set-up; the message names the thing and how to fix it."""


class ConfigError(ValueError):
    """A configuration value or file is wrong; the message names the key and the fix.
    (Re-exported by ``vcmr.config``; here so that modules below the config loader can raise it.)"""


class CheckpointError(VcmrError):
    """A checkpoint is missing, corrupt, or does not fit the expected architecture.
    (Here, below every module that raises it: the safe file reader, the model builders.)"""
