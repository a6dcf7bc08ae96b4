"""The `fleetops` command's entry point: the console's packages first, then `console.cli.main`.

The base install is the node agent alone (`pip install fleetops`); the console's packages come
with the `console` extra. Without them `console.cli.main` cannot even be imported (its modules use
Rich at import time), so the check runs here, before it, with the standard library only:
one line on stderr and exit 2 (a usage error), never a traceback.
"""

from __future__ import annotations

import importlib.util
import sys

# The import names of the `console` extra's distributions (pyproject.toml; a test keeps them
# in step).
CONSOLE_PACKAGES = ("rich", "textual", "asyncssh", "pydantic")
EXIT_USAGE = 2


def missing_packages() -> list[str]:
    missing = []
    for name in CONSOLE_PACKAGES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def _refuse(missing: list[str]) -> int:
    print(f"fleetops: the console needs its own packages (missing: {', '.join(missing)}): "
          "pip install 'fleetops[console]'", file=sys.stderr)
    return EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    missing = missing_packages()
    if missing:
        return _refuse(missing)
    try:
        from console.cli.main import main as cli_main
    except ModuleNotFoundError as exc:  # one of their own dependencies is missing
        top = (exc.name or "").partition(".")[0]
        if top in ("", "console", "agents", "themes"):
            raise
        return _refuse([top])
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
