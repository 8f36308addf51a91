"""Writing segmend's config file (TOML) from the settings dialog.

The file is the one the CLI reads (:mod:`app.model.events.settings`): the
dialog changes only its own keys, in place, and keeps the rest of the file as
the user wrote it (other keys, sections, comments).  The new text is checked
(it must parse and give back the values written) and written atomically:
a temporary file beside it, then a rename.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path

from app.model.events.settings import KafkaConfigError

Key = tuple[str, str]
"""``(section, key)`` of a setting, e.g. ``("kafka", "bootstrap_servers")``."""
Value = str | int | None
"""A setting's value; None removes the key (the default applies)."""

_HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-]+)\s*\]\s*(#.*)?$")
_ARRAY_HEADER = re.compile(r"^\s*\[\[")


def toml_value(value: str | int) -> str:
    """``value`` as TOML (a basic string, or an integer)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"a setting is a string or an integer, got {value!r}")
    return str(value) if isinstance(value, int) else json.dumps(value, ensure_ascii=False)


def _key_pattern(key: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*(\"{re.escape(key)}\"|'{re.escape(key)}'|{re.escape(key)})\s*=")


def _value_extent(lines: list[str], start: int) -> int:
    """One past the last line of the key/value pair starting at ``start`` (multi-line
    arrays and strings included)."""
    for end in range(start + 1, len(lines) + 1):
        try:
            tomllib.loads("\n".join(lines[start:end]))
        except tomllib.TOMLDecodeError:
            continue
        return end
    return start + 1


def _sections(lines: list[str]) -> list[tuple[str | None, int, int]]:
    """``(table name or None, first line, end line)``: the root and each ``[table]``."""
    out: list[tuple[str | None, int, int]] = []
    name: str | None = None
    start = 0
    for i, line in enumerate(lines):
        match = _HEADER.match(line)
        if match or _ARRAY_HEADER.match(line):
            out.append((name, start, i))
            name = match.group(1) if match else "[[array]]"
            start = i + 1
    out.append((name, start, len(lines)))
    return out


def edit_config_text(text: str, values: Mapping[Key, Value]) -> str:
    """``text`` (a TOML document) with ``values`` set in place.

    A key present in its section is replaced where it stands; a missing key is
    added at the end of its section (the section at the end of the text if it
    is missing too); a value of None removes the key.  Everything else stays.
    """
    lines = text.splitlines()
    for (section, key), value in values.items():
        found = [s for s in _sections(lines) if s[0] == section]
        pattern = _key_pattern(key)
        if found:
            _name, start, end = found[0]
            at = next((i for i in range(start, end) if pattern.match(lines[i])), None)
            if at is not None:
                stop = _value_extent(lines, at)
                new = [] if value is None else [f"{key} = {toml_value(value)}"]
                lines[at:stop] = new
                continue
            if value is None:
                continue
            last = end
            while last > start and not lines[last - 1].strip():
                last -= 1
            lines.insert(last, f"{key} = {toml_value(value)}")
        elif value is not None:
            if lines and lines[-1].strip():
                lines.append("")
            lines += [f"[{section}]", f"{key} = {toml_value(value)}"]
    return "\n".join(lines) + "\n" if lines else ""


def update_config(path: Path, values: Mapping[Key, Value]) -> bool:
    """Set ``values`` in the config file at ``path`` (made if missing), atomically.

    Returns
    -------
    bool
        False if the file already held these values (nothing was written).

    Raises
    ------
    KafkaConfigError
        If the file cannot be read, is not TOML, or cannot be written; the
        file is then unchanged.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise KafkaConfigError(f"{path}: cannot read the config file: {exc}") from None
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise KafkaConfigError(f"{path}: not valid TOML: {exc}") from None
    if all(_get(before, key) == value for key, value in values.items()):
        return False
    new = edit_config_text(text, values)
    try:
        after = tomllib.loads(new)
    except tomllib.TOMLDecodeError:
        after = None
    if after is None or any(_get(after, key) != value for key, value in values.items()):
        raise KafkaConfigError(f"{path}: cannot update the settings in place (a layout "
                               "segmend does not edit); change them in the file")
    _write_atomically(path, new)
    return True


def _get(data: Mapping[str, object], key: Key) -> object:
    table = data.get(key[0])
    return table.get(key[1]) if isinstance(table, dict) else None


def _write_atomically(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise KafkaConfigError(f"{path}: cannot write the config file: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise KafkaConfigError(f"{path}: cannot write the config file: {exc.strerror}") from None
