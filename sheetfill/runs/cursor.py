"""The scheduled-run cursor: the newest archive date a successful scheduled run processed.

A plain run processes archives dated after the cursor; a backfill (since given) reads but never
moves it. Writes are atomic (temp file + rename) so a crash never leaves a torn cursor.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from sheetfill.errors import ConfigError


def read_cursor(path: Path) -> dt.date | None:
    path = Path(path)
    if not path.exists():
        return None
    try:
        return dt.date.fromisoformat(json.loads(path.read_text())["last_date"])
    except IsADirectoryError:
        raise ConfigError(
            f"Cursor file {path} is a directory, not a file; move it away (or set cursor_file to a file path)."
        ) from None
    except PermissionError:
        raise ConfigError(f"Cursor file {path}: permission denied; make it readable for this user.") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"Cursor file {path} is unreadable ({exc}); inspect it, or run `sheetfill cursor reset`."
        ) from None


def write_cursor(path: Path, last_date: dt.date) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"last_date": last_date.isoformat(), "updated": dt.datetime.now(dt.UTC).isoformat()}
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    temp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(temp, path)


def advance_cursor(path: Path, newest: dt.date) -> dt.date:
    """Move the cursor forward to newest (never backwards); return the cursor now stored."""
    current = read_cursor(path)
    if current is None or newest > current:
        write_cursor(path, newest)
        return newest
    return current


def reset_cursor(path: Path) -> bool:
    """Forget the cursor so the next scheduled run starts from the first archive."""
    try:
        Path(path).unlink()
        return True
    except FileNotFoundError:
        return False
    except IsADirectoryError:
        raise ConfigError(f"Cursor file {path} is a directory, not a file; move it away by hand.") from None
