"""Text from scenarios, results and servers made safe to print on a terminal.

A market, scenario or region name comes from whoever wrote the scenario file, or from a server
that stored it before names were checked. Printed raw, an escape sequence in it (``\\x1b[2J``
clears the screen, ``\\x1b]0;…`` sets the window title, ``\\x9b`` is the one-byte CSI) drives
the reader's terminal. :func:`printable` shows such characters as visible escapes instead.
Light: standard library only.
"""

from __future__ import annotations

import re

__all__ = ["printable"]

# C0 controls, DEL and C1 controls (what a terminal acts on), the Unicode line and paragraph
# separators, and the bidirectional overrides and isolates (they reorder what is displayed)
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\u061c]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(m: re.Match[str]) -> str:
    ch = m.group()
    if ch in _SHORT:
        return _SHORT[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(s: str) -> str:
    """``s`` with every control character shown as a visible escape (``\\x1b``, ``\\n``, ``\\u202e``).

    Everything else is kept as it is, accents and other scripts included; text without control
    characters comes back unchanged (the same object).
    """
    return _UNSAFE.sub(_escape, s) if _UNSAFE.search(s) else s
