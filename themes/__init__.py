"""Textual themes for the fleetops console, one TOML file per theme.

The files in this package ship with fleetops; users add their own in
`$XDG_CONFIG_HOME/fleetops/themes/*.toml` (a user theme with a shipped name replaces it).
Each file holds `textual.theme.Theme`'s constructor arguments (name, primary, secondary,
accent, foreground, background, surface, panel, success, warning, error, dark) and an
optional `[variables]` table. A broken user file is skipped and reported, never fatal: a
typo in a colour must not keep the console from starting during an incident.
"""

from __future__ import annotations

import logging
import os
import tomllib
from importlib import resources
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import Theme

__all__ = ["DEFAULT_THEME", "ThemeFileError", "load_themes", "parse_theme", "user_theme_dir"]

DEFAULT_THEME = "fleetops-dark"
log = logging.getLogger("fleetops.themes")

_COLOURS = ("primary", "secondary", "accent", "foreground", "background", "surface", "panel",
            "success", "warning", "error", "boost")
_KEYS = frozenset((*_COLOURS, "name", "dark", "variables", "luminosity_spread", "text_alpha"))


class ThemeFileError(ValueError):
    """A theme file that cannot be used; the message names the file and the problem."""


def user_theme_dir() -> Path:
    """$XDG_CONFIG_HOME/fleetops/themes, or ~/.config/fleetops/themes."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".config"
    return root / "fleetops" / "themes"


def parse_theme(text: str, source: str) -> Theme:
    """One theme from TOML text; ThemeFileError saying what is wrong otherwise."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ThemeFileError(f"{source}: invalid TOML: {exc}") from None
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ThemeFileError(f"{source}: unknown key(s) {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(_KEYS))})")
    for key in ("name", "primary"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ThemeFileError(f"{source}: '{key}' is required and must be a string")
    for key in _COLOURS:
        if key in data:
            _check_colour(data[key], f"{source}: {key}")
    if "dark" in data and not isinstance(data["dark"], bool):
        raise ThemeFileError(f"{source}: 'dark' must be true or false")
    variables = data.get("variables", {})
    if not isinstance(variables, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in variables.items()):
        raise ThemeFileError(f"{source}: [variables] must map names to strings")
    try:
        return Theme(**data)
    except (TypeError, ValueError) as exc:
        raise ThemeFileError(f"{source}: {exc}") from None


def _check_colour(value: object, where: str) -> None:
    if not isinstance(value, str):
        raise ThemeFileError(f"{where} must be a colour string, got {value!r}")
    try:
        Color.parse(value)
    except ColorParseError:
        raise ThemeFileError(f"{where}: not a colour: {value!r}") from None


def load_themes(user_dir: Path | None = None,
                problems: list[str] | None = None) -> dict[str, Theme]:
    """Every shipped theme, then every `*.toml` in `user_dir` (None: shipped themes only).

    A user file that cannot be read or parsed is logged and, when `problems` is given,
    appended to it so the console can tell the user; it never raises.
    """
    themes: dict[str, Theme] = {}
    for entry in sorted(resources.files(__name__).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            theme = parse_theme(entry.read_text(encoding="utf-8"), entry.name)
            themes[theme.name] = theme
    if user_dir is None or not user_dir.is_dir():
        return themes
    for path in sorted(user_dir.glob("*.toml")):
        try:
            theme = parse_theme(path.read_text(encoding="utf-8"), str(path))
        except (OSError, UnicodeDecodeError, ThemeFileError) as exc:
            message = f"theme skipped: {exc}"
            log.warning("%s", message)
            if problems is not None:
                problems.append(message)
            continue
        themes[theme.name] = theme
    return themes
