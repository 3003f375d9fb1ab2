"""Data profiles: name/path resolution, schema validation and error messages that name the fix."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from sheetfill.bundle.profiles import PROFILES_DIR, load_profile
from sheetfill.errors import ProfileError


@pytest.mark.parametrize("name", ["aviation", "generic"])
def test_shipped_profiles_load_by_name(name):
    profile = load_profile(name)
    assert profile.name == name
    assert profile.path == PROFILES_DIR / f"{name}.yaml"
    assert profile.sha256 == hashlib.sha256(profile.path.read_bytes()).hexdigest()
    assert "contact_email" in profile.pii_fields
    assert all({"name", "check"} <= set(item) for item in profile.expectations)


def test_profile_loads_from_a_path_and_hash_follows_the_bytes(tmp_path):
    data = yaml.safe_load((PROFILES_DIR / "generic.yaml").read_text())
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data))
    first = load_profile(str(path))
    path.write_text(yaml.safe_dump({**data, "description": "changed"}))
    assert first.path == path and first.name == "generic"
    assert load_profile(path).sha256 != first.sha256


def write_profile(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load((PROFILES_DIR / "aviation.yaml").read_text())
    for dotted, value in changes.items():
        target = data
        *parents, last = dotted.split("__")
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        target[last] = value
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_unknown_name_lists_the_known_profiles():
    with pytest.raises(ProfileError, match=r"not found.*aviation.*generic"):
        load_profile("no-such-profile")


def test_invalid_yaml_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ProfileError, match=r"bad\.yaml: not valid YAML"):
        load_profile(path)


def test_unknown_key_is_named_with_the_allowed_keys(tmp_path):
    path = write_profile(tmp_path, resolution__treshold=80)
    with pytest.raises(ProfileError) as error:
        load_profile(path)
    message = str(error.value)
    assert str(path) in message and "resolution" in message and "'treshold'" in message
    assert "allowed keys here" in message and "threshold" in message


def test_wrong_field_type_lists_the_choices(tmp_path):
    path = write_profile(tmp_path, fields__website__type="url")
    with pytest.raises(ProfileError, match=r"fields\.website\.type: 'url' is not one of.*fix: use one of: org_name"):
        load_profile(path)


def test_priority_must_be_an_integer(tmp_path):
    path = write_profile(tmp_path, sources__0__priority="high")
    with pytest.raises(ProfileError, match=r"sources\[0\]\.priority: 'high' is not of type 'integer'"):
        load_profile(path)


def test_expectation_format_is_the_shared_one(tmp_path):
    path = write_profile(tmp_path, expectations=[{"name": "e", "column": "website", "check": "regex"}])
    with pytest.raises(ProfileError, match=r"expectations\[0\].*'pattern' is a required property"):
        load_profile(path)
    path = write_profile(
        tmp_path,
        expectations=[{"name": "e", "check": "row_count", "min": 1, "max": 5, "mostly": 0.5, "source": "sacaa"}],
    )
    assert load_profile(path).expectations[0]["max"] == 5


def test_references_to_undeclared_fields_are_named(tmp_path):
    path = write_profile(tmp_path, resolution__link_keys=["company_id"])
    with pytest.raises(ProfileError, match=r"resolution\.link_keys\[0\]: 'company_id' is not a declared field"):
        load_profile(path)


def test_expectation_source_must_be_a_declared_source(tmp_path):
    path = write_profile(tmp_path, expectations=[{"name": "e", "check": "row_count", "min": 1, "source": "nope"}])
    with pytest.raises(ProfileError, match=r"expectations\[0\]\.source: 'nope' is not a source"):
        load_profile(path)


def test_duplicate_expectation_names_rejected(tmp_path):
    twice = [{"name": "same", "check": "row_count", "min": 1}] * 2
    path = write_profile(tmp_path, expectations=twice)
    with pytest.raises(ProfileError, match=r"'same' is used twice"):
        load_profile(path)


def test_a_broken_regex_is_rejected_at_load_before_any_job(tmp_path):
    broken = [{"name": "e", "check": "regex", "column": "website", "pattern": "(unclosed"}]
    with pytest.raises(ProfileError, match=r"expectations\[0\] \(e\)\.pattern: not a valid regular expression"):
        load_profile(write_profile(tmp_path, expectations=broken))
