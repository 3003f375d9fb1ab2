"""Names taken from the archive tree never reach a shell as code."""

from __future__ import annotations

import shutil

import pytest

pytestmark = pytest.mark.slow


def test_a_version_name_with_shell_syntax_is_passed_as_text(workflow, archives, tmp_path):
    hostile = "v1;touch PWNED;$(touch PWNED2)"
    source = archives / "2025-09-29" / "hotpass-inputs-v1.zip"
    shutil.copyfile(source, archives / "2025-09-29" / f"hotpass-inputs-{hostile}.zip")
    workflow.run(since="2025-09-29", until="2025-09-29", versions=f"[{hostile}]")
    assert workflow.status(f"2025-09-29--{hostile}")["status"] == "ok"
    assert not list(tmp_path.rglob("PWNED*"))
