"""Request bodies of the run API: unknown fields are rejected, values are typed and bounded."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DATE = r"^\d{4}-\d{2}-\d{2}$"
VERSION = r"^[A-Za-z0-9._-]{1,64}$"


class RunRequest(BaseModel):
    """POST /api/v1/runs. Interlace's body {since, until, force, models} is accepted too (models = versions)."""

    model_config = ConfigDict(extra="forbid")

    since: str | None = Field(None, max_length=10, description="first date, YYYY-MM-DD (a backfill)")
    until: str | None = Field(None, max_length=10, description="last date, YYYY-MM-DD, inclusive")
    versions: list[str] | None = Field(None, max_length=1000, description="versions to process; null = all")
    models: list[str] | None = Field(None, max_length=1000, description="Interlace's name for versions")
    bundles: list[str] | None = Field(
        None, max_length=10_000, description="exactly these bundles of the window (DATE--VERSION); null = all"
    )
    force: bool = Field(False, description="rebuild every bundle of the window (= reprocess: all)")
    reprocess: Literal["missing", "failed", "all"] = Field(
        "missing", description="missing: what Snakemake finds stale; failed: also bundles that failed last; all"
    )
    dry_run: bool = Field(False, description="only plan: record what would run, run nothing")

    @model_validator(mode="after")
    def _one_name_for_versions(self):
        if self.versions is not None and self.models is not None:
            raise ValueError("give versions or models (Interlace's name for them), not both")
        for version in self.versions or self.models or []:
            if not isinstance(version, str) or not version or len(version) > 64:
                raise ValueError(f"version {version!r} must be a non-empty name of at most 64 characters")
        return self

    @property
    def chosen_versions(self) -> list[str] | None:
        return self.versions if self.versions is not None else self.models

    @property
    def mode(self) -> str:
        return "all" if self.force else self.reprocess


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["drain", "now"] = Field(
        "drain", description="drain: start no new job, let running ones finish; now: stop running jobs (SIGINT)"
    )
