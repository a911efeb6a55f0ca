"""Remembering paired devices in the user's settings file, keeping their comments and layout."""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

from controller.errors import ConfigError
from controller.settings.models import Settings

if TYPE_CHECKING:
    from controller.safety import DeviceKind

_SECTION = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")


def remember_device(path: Path, kind: DeviceKind, *, address: str, name: str | None) -> None:
    """Set ``[devices.<kind>]`` address (and name) in ``path``, creating the file if needed.

    Other sections, comments and layout are kept; the file is replaced atomically. Raises
    `ConfigError` when the file would not be valid settings after the update (nothing is
    written) or cannot be written.
    """
    lines = path.read_text().splitlines() if path.exists() else []
    values = {"address": address} | ({"name": name} if name else {})
    header = f"devices.{kind}"
    start = next((i for i, line in enumerate(lines) if _section(line) == header), None)
    if start is None:
        lines += ["", f"[{header}]", *(f"{k} = {_quote(v)}" for k, v in values.items())]
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if _section(lines[i]) is not None),
            len(lines),
        )
        body = [
            line for line in lines[start + 1 : end] if line.split("=", 1)[0].strip() not in values
        ]
        lines[start + 1 : end] = [*(f"{k} = {_quote(v)}" for k, v in values.items()), *body]
    text = "\n".join(lines).lstrip("\n") + "\n"
    try:
        Settings.model_validate(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: would not stay valid after the update: {exc}") from exc
    _write_atomically(path, text)


def _section(line: str) -> str | None:
    match = _SECTION.match(line)
    return match.group(1).strip() if match else None


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _write_atomically(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(handle, "w") as file:
            file.write(text)
        Path(temporary).replace(path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write settings: {exc.strerror}") from exc
