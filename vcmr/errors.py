"""Errors a user can fix. ``vcmr`` prints their message without a traceback."""


class VcmrError(Exception):
    """Bad input or set-up; the message names the thing and how to fix it."""
