"""The one-line ``PROG: error: …`` every command line prints for bad input (exit status 2).

Bad input is whatever the user can fix: a missing, damaged or unwritable file or directory, a
setting out of range, a resume that does not match its run. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import sys

from pydantic import ValidationError

USER_ERRORS = (ValueError, KeyError, OSError, ValidationError)


def error_message(exc: BaseException) -> str:
    """One readable line per problem (pydantic errors listed as 'field: message')."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
    if isinstance(exc, OSError) and exc.strerror:   # from the system, not one of our messages
        where = f"{exc.filename}: " if exc.filename else ""
        hint = "" if isinstance(exc, FileNotFoundError) else " (choose a writable directory, or fix its permissions)"
        return f"{where}{exc.strerror.lower()}{hint}"
    if isinstance(exc, KeyError):
        return str(exc.args[0]) if exc.args else "missing key"
    return " ".join(str(exc).split("\n")[:1]) or type(exc).__name__


def report(prog: str, exc: BaseException) -> int:
    """Print ``prog: error: …`` to stderr; return the exit status 2."""
    print(f"{prog}: error: {error_message(exc)}", file=sys.stderr)
    return 2
