import datetime as dt

import pytest

from sheetfill.errors import ConfigError
from sheetfill.runs.config import load_settings, parse_date


@pytest.fixture
def root(tmp_path):
    (tmp_path / "archives").mkdir()
    return tmp_path / "archives"


def test_defaults_filled_and_dates_parsed_from_strings(root):
    settings = load_settings({"archive_root": str(root), "since": "2025-09-29", "until": "2025-10-01"})
    assert settings.since == dt.date(2025, 9, 29) and settings.until == dt.date(2025, 10, 1)
    assert settings.archive_pattern == "{date}/hotpass-inputs-{version}.zip"
    assert settings.limits.max_compression_ratio == 200
    assert settings.cursor_file.name == "cursor.json" and settings.backfill


def test_yaml_dates_and_version_strings_accepted(root):
    settings = load_settings({"archive_root": str(root), "since": dt.date(2025, 9, 29), "versions": "v1, v2"})
    assert settings.since == dt.date(2025, 9, 29) and settings.versions == ("v1", "v2")


@pytest.mark.parametrize("value", ["2025-13-01", "29/09/2025", "20250929", "yesterday"])
def test_malformed_dates_name_the_key_and_the_format(root, value):
    with pytest.raises(ConfigError, match=r"since=.*YYYY-MM-DD"):
        load_settings({"archive_root": str(root), "since": value})


def test_since_after_until_is_refused(root):
    with pytest.raises(ConfigError, match="since .2025-10-02. is after until .2025-10-01."):
        load_settings({"archive_root": str(root), "since": "2025-10-02", "until": "2025-10-01"})


def test_unknown_key_suggests_the_right_one(root):
    with pytest.raises(ConfigError, match="Unknown config key 'sinse'. Did you mean 'since'"):
        load_settings({"archive_root": str(root), "sinse": "2025-10-02"})


def test_wrong_type_is_explained(root):
    with pytest.raises(ConfigError, match="archive"):
        load_settings({"archive_root": str(root), "archive": "maybe"})


def test_missing_archive_root_says_how_to_fix(tmp_path):
    with pytest.raises(ConfigError, match="archive_root .* is not a folder.*--config archive_root="):
        load_settings({"archive_root": str(tmp_path / "nope")})


@pytest.mark.parametrize(
    "pattern", ["{date}.zip", "{date}/{version}/{version}.zip", "{date}/{who}-{version}.zip", "../{date}/{version}.zip"]
)
def test_bad_patterns_are_refused(root, pattern):
    with pytest.raises(ConfigError, match="archive_pattern"):
        load_settings({"archive_root": str(root), "archive_pattern": pattern})


def test_parse_date_passes_none_through():
    assert parse_date("until", None) is None and parse_date("until", "") is None
