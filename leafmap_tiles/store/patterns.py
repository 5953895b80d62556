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

from .. import _paths
from ..errors import PatternError
from .layout import RESERVED_KEYS

_KEY_NAME = re.compile(r"^\w+$")


@dataclass(frozen=True)
class ParsedPattern:
    """A pattern split into what finds files and what reads keys from them."""

    keys: tuple[str, ...]
    glob: str
    regex: re.Pattern
    #: every placeholder occurrence as a group ``o<i>`` matching anything (no key
    #: rules): finds out why a file the glob found does not fit
    lax: re.Pattern | None = None
    occurrences: tuple[str, ...] = ()


@dataclass
class PatternMatch:
    """Files found for a pattern.

    Attributes:
        keys: key names in pattern order.
        files: ``{key_values_tuple: absolute_path}``, sorted by path.
        unmatched: absolute paths the glob found but the key rules rejected
            (e.g. a ``_`` inside a key value), sorted.
        reasons: ``{path: why}`` for every unmatched path, e.g. ``"key 'rcp' would
            be 'rcp8.5': '.' is not allowed in a key value (letters and digits only)"``.
    """

    keys: tuple[str, ...]
    files: dict[tuple[str, ...], str] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)


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
    lax_parts: list[str] = []
    occurrences: list[str] = []
    for literal, name, spec, conversion in parts:
        glob_parts.append(glob.escape(literal))
        regex_parts.append(re.escape(literal))
        lax_parts.append(re.escape(literal))
        if name is None:
            continue
        lax_parts.append(f"(?P<o{len(occurrences)}>.*?)")
        occurrences.append(name)
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
    return ParsedPattern(tuple(keys), "".join(glob_parts), re.compile("".join(regex_parts), re.DOTALL),
                         re.compile("".join(lax_parts), re.DOTALL), tuple(occurrences))


def why_unmatched(parsed: ParsedPattern, path: str) -> str:
    """Why ``path`` (found by the pattern's glob) does not fit its key rules, in words:
    the first key whose value would hold a character other than a letter or digit
    (naming it), would be empty, or differs between two places of the pattern."""
    m = parsed.lax.fullmatch(path) if parsed.lax is not None else None
    if m is None:
        return "its name does not fit the fixed parts of the pattern"
    seen: dict[str, str] = {}
    for i, name in enumerate(parsed.occurrences):
        value = m.group(f"o{i}")
        if name == "":
            continue
        if value == "":
            return f"key {name!r} would be empty"
        bad = next((ch for ch in value if not (ch.isalnum() and ch != "_")), None)
        if bad is not None:
            shown = {"/": "'/' (a folder separator)", " ": "' ' (a space)"}.get(bad, repr(bad))
            return (f"key {name!r} would be {value!r}: {shown} is not allowed in a key value "
                    "(letters and digits only)")
        if name in seen and seen[name] != value:
            return f"key {name!r} appears twice in the pattern with different values ({seen[name]!r} and {value!r})"
        seen[name] = value
    return "its name does not fit the pattern"


def describe_unmatched(paths: list[str], reasons: dict[str, str], limit: int = 20) -> str:
    """One line per file, ``"  <path>: <reason>"`` (at most ``limit``, then a count)."""
    lines = [f"  {p}: {reasons.get(p, 'does not fit the pattern')}" for p in paths[:limit]]
    if len(paths) > limit:
        lines.append(f"  ... and {len(paths) - limit} more")
    return "\n".join(lines)


def find_files(pattern: str) -> PatternMatch:
    """Find the files of a pattern and their key values.

    Args:
        pattern: raster pattern (a path, or a ``file://`` URL); relative patterns are
            taken from the current directory.

    Returns:
        a :class:`PatternMatch` (absolute paths).

    Raises:
        PatternError: invalid pattern (see :func:`parse_pattern`), no file matches,
            or two files give the same key values.
    """
    parsed = parse_pattern(_paths.local_path(pattern))  # a file:// URL is the local path it names
    found = sorted(os.path.abspath(p) for p in glob.glob(parsed.glob) if not os.path.isdir(p))
    result = PatternMatch(parsed.keys)
    seen: dict[tuple[str, ...], str] = {}
    for path in found:
        m = parsed.regex.fullmatch(path)
        if m is None:
            result.unmatched.append(path)
            result.reasons[path] = why_unmatched(parsed, path)
            continue
        values = tuple(m.group(f"k{i}") for i in range(len(parsed.keys)))
        if values in seen:
            raise PatternError(
                f"Pattern leads to duplicate keys {dict(zip(parsed.keys, values))}: "
                f"{seen[values]} and {path}"
            )
        seen[values] = path
    if not seen:
        detail = ""
        if result.unmatched:
            detail = f"; {len(result.unmatched)} file(s) found by its wildcards do not fit its key rules:\n" + \
                describe_unmatched(result.unmatched, result.reasons)
        raise PatternError(f"Given pattern matches no files: {pattern}{detail}")
    result.files = seen
    return result
