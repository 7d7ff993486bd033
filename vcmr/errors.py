"""Errors a user can fix. ``vcmr`` prints their message without a traceback."""
import reprlib


class VcmrError(Exception):
    """Bad input or set-up; the message names the thing and how to fix it."""


class ConfigError(ValueError):
    """A configuration value or file is wrong; the message names the key and the fix.
    (Re-exported by ``vcmr.config``; here so that modules below the config loader can raise it.)"""


class CheckpointError(VcmrError):
    """A checkpoint is missing, corrupt, or does not fit the expected architecture.
    (Here, below every module that raises it: the safe file reader, the model builders.)"""



def short_repr(value: object, limit: int = 200) -> str:
    """``repr(value)`` cut at ``limit`` characters; containers and strings are shortened at
    every level first (``reprlib``), so a hostile value costs bounded work, never a 4 MB line."""
    if isinstance(value, int) and value.bit_length() > 4 * limit:
        return f"<an integer of {value.bit_length()} bits>"
    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict, r.maxset = 3, 10, 10, 10, 10
    r.maxstring, r.maxother, r.maxlong = limit, limit, limit
    text = r.repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
