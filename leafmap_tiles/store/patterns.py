"""Terracotta raster patterns: ``rasters/{sensor}/{date}_{band}{}.tif``.

Rules, as in ``terracotta ingest``:

- ``{name}`` is a key; it matches one or more letters or digits (no ``_``, no
  ``-``, no ``/``); keys are taken in the order they first appear;
- ``{}`` is a wildcard matching anything within one path component;
- a name used twice must match the same value both times;
- ``{{`` and ``}}`` are literal braces.

Where Terracotta crashes or silently does something else, we raise
:class:`~leafmap_tiles.errors.PatternError` with a message instead: a key name that
is not ``\\w+`` (e.g. ``{a-b}``, ``{a.b}``), a reserved key name, a format spec or
conversion (``{a:3}``, ``{a!r}``), a pattern without keys, no file found, or two files
giving the same keys.  Glob characters in the literal parts (``*``, ``?``, ``[``) are
taken literally, and a file must match the whole pattern (Terracotta matches a
prefix only).  Files found by the pattern's glob that the key rules reject are
returned, not silently skipped.
"""

from __future__ import annotations

import glob
import os
import re
import string
from dataclasses import dataclass, field

from ..errors import PatternError
from .layout import RESERVED_KEYS

_KEY_NAME = re.compile(r"^\w+$")


@dataclass(frozen=True)
class ParsedPattern:
    """A pattern split into what finds files and what reads keys from them."""

    keys: tuple[str, ...]
    glob: str
    regex: re.Pattern


@dataclass
class PatternMatch:
    """Files found for a pattern.

    Attributes:
        keys: key names in pattern order.
        files: ``{key_values_tuple: absolute_path}``, sorted by path.
        unmatched: absolute paths the glob found but the key rules rejected
            (e.g. a ``_`` inside a key value), sorted.
    """

    keys: tuple[str, ...]
    files: dict[tuple[str, ...], str] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)


def parse_pattern(pattern: str) -> ParsedPattern:
    """Parse a raster pattern (see module docstring) into keys, glob and regex.

    Raises:
        PatternError: unbalanced braces, bad or reserved key names, format specs,
            or no key at all.
    """
    try:
        parts = list(string.Formatter().parse(pattern))
    except ValueError as exc:
        raise PatternError(f"Invalid pattern {pattern!r}: {exc}") from exc

    keys: list[str] = []
    glob_parts: list[str] = []
    regex_parts: list[str] = []
    for literal, name, spec, conversion in parts:
        glob_parts.append(glob.escape(literal))
        regex_parts.append(re.escape(literal))
        if name is None:
            continue
        if spec or conversion:
            raise PatternError(
                f"Invalid placeholder {{{name}{'!' + conversion if conversion else ''}"
                f"{':' + spec if spec else ''}}} in pattern {pattern!r}: use {{name}} or {{}}"
            )
        glob_parts.append("*")
        if name == "":
            regex_parts.append(".*?")
            continue
        if not _KEY_NAME.match(name):
            raise PatternError(
                f"Invalid key name {name!r} in pattern {pattern!r}: key names may contain "
                "only letters, digits and underscores"
            )
        if name in RESERVED_KEYS:
            raise PatternError(f"Key name {name!r} is reserved (reserved: {', '.join(RESERVED_KEYS)})")
        if name in keys:
            regex_parts.append(f"(?P=k{keys.index(name)})")
        else:
            regex_parts.append(f"(?P<k{len(keys)}>[^\\W_]+)")
            keys.append(name)
    if not keys:
        raise PatternError(f"Pattern {pattern!r} must contain at least one {{key}} placeholder")
    return ParsedPattern(tuple(keys), "".join(glob_parts), re.compile("".join(regex_parts), re.DOTALL))


def find_files(pattern: str) -> PatternMatch:
    """Find the files of a pattern and their key values.

    Args:
        pattern: raster pattern; relative patterns are taken from the current directory.

    Returns:
        a :class:`PatternMatch` (absolute paths).

    Raises:
        PatternError: invalid pattern (see :func:`parse_pattern`), no file matches,
            or two files give the same key values.
    """
    parsed = parse_pattern(os.path.abspath(pattern))
    found = sorted(os.path.abspath(p) for p in glob.glob(parsed.glob) if not os.path.isdir(p))
    result = PatternMatch(parsed.keys)
    seen: dict[tuple[str, ...], str] = {}
    for path in found:
        m = parsed.regex.fullmatch(path)
        if m is None:
            result.unmatched.append(path)
            continue
        values = tuple(m.group(f"k{i}") for i in range(len(parsed.keys)))
        if values in seen:
            raise PatternError(
                f"Pattern leads to duplicate keys {dict(zip(parsed.keys, values))}: "
                f"{seen[values]} and {path}"
            )
        seen[values] = path
    if not seen:
        detail = f" ({len(result.unmatched)} files found by the glob do not fit the key rules)" if result.unmatched else ""
        raise PatternError(f"Given pattern matches no files: {pattern}{detail}")
    result.files = seen
    return result
