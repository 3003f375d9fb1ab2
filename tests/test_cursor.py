import datetime as dt

import pytest

from sheetfill.errors import ConfigError
from sheetfill.runs.cursor import advance_cursor, read_cursor, reset_cursor


def test_cursor_moves_forward_only(tmp_path):
    path = tmp_path / "state" / "cursor.json"
    assert read_cursor(path) is None
    assert advance_cursor(path, dt.date(2025, 10, 2)) == dt.date(2025, 10, 2)
    assert advance_cursor(path, dt.date(2025, 9, 1)) == dt.date(2025, 10, 2)
    assert read_cursor(path) == dt.date(2025, 10, 2)
    assert reset_cursor(path) and read_cursor(path) is None and not reset_cursor(path)


def test_torn_cursor_file_is_reported_with_the_fix(tmp_path):
    path = tmp_path / "cursor.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="unreadable"):
        read_cursor(path)
    path.write_text('{"last_date": "someday"}')
    with pytest.raises(ConfigError, match="sheetfill cursor reset"):
        read_cursor(path)
