"""Shipped themes load; a broken user theme is skipped and reported, never fatal."""

from __future__ import annotations

from pathlib import Path

import pytest

from themes import ThemeFileError, load_themes, parse_theme

SHIPPED = {"fleetops-dark", "fleetops-light", "fleetops-high-contrast"}


def test_shipped_themes() -> None:
    themes = load_themes()
    assert set(themes) >= SHIPPED
    assert themes["fleetops-light"].dark is False


def test_user_themes_add_and_bad_ones_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text('name = "mine"\nprimary = "#123456"\n')
    (tmp_path / "typo.toml").write_text('name = "typo"\nprimary = "#123456"\nprimray = "x"\n')
    (tmp_path / "broken.toml").write_text("name = \n")
    (tmp_path / "colour.toml").write_text('name = "c"\nprimary = "not-a-colour"\n')
    problems: list[str] = []
    themes = load_themes(tmp_path, problems)
    assert "mine" in themes and set(themes) >= SHIPPED
    assert {"typo", "c"}.isdisjoint(themes)
    assert len(problems) == 3
    assert any("unknown key(s) primray" in p for p in problems)


@pytest.mark.parametrize(("text", "message"), [
    pytest.param('primary = "#fff"', "'name' is required", id="no-name"),
    pytest.param('name = "x"\nprimary = "#fff"\ndark = "yes"', "'dark' must be",
                 id="dark-not-bool"),
    pytest.param('name = "x"\nprimary = "#fff"\n[variables]\na = 1', "[variables]",
                 id="variables-not-strings"),
])
def test_parse_theme_errors(text: str, message: str) -> None:
    with pytest.raises(ThemeFileError, match=message.replace("[", r"\[")):
        parse_theme(text, "t.toml")
