"""Why a bundle would be (re)built, in the user's words, from the facts Snakemake's DAG gives.

Snakemake decides what is stale (sheetfill.dryrun asks its DAG); this module only names the
decision. It sees plain facts, never Snakemake objects, so it stays cheap and testable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# reason codes, most decisive first: a bundle with several reasons is listed under the first
FORCED = "forced"
NEW_ARCHIVE = "new archive"
OUTPUTS_MISSING = "outputs missing or incomplete"
ARCHIVE_CHANGED = "archive bytes changed"
PROFILE_CHANGED = "data profile changed"
CODE_CHANGED = "code or parameters changed"
REASONS = (FORCED, NEW_ARCHIVE, OUTPUTS_MISSING, ARCHIVE_CHANGED, PROFILE_CHANGED, CODE_CHANGED)


@dataclass
class JobFacts:
    """What Snakemake's DAG says about one job of a bundle (rule bundle or archive_bundle)."""

    rule: str
    forced: bool = False
    missing: list[str] = field(default_factory=list)  # output paths that do not exist
    incomplete: list[str] = field(default_factory=list)  # outputs of a job that was interrupted
    updated_inputs: list[str] = field(default_factory=list)  # inputs newer than outputs, other bytes
    input_set_changed: bool = False  # a different archive or data profile path than last time
    previous_inputs: list[str] = field(default_factory=list)  # the inputs recorded by the last build
    code_changed: bool = False  # the rule's command, params or software environment
    ever_built: bool = True  # Snakemake holds metadata for some output, or some output exists


def classify(job: JobFacts, profile_path: str) -> tuple[str, str]:
    """(reason code, detail) for one job; the detail names the files involved."""
    if job.forced:
        return FORCED, f"--forcerun/--force ({job.rule})"
    if job.missing and not job.ever_built and job.rule == "bundle":
        return NEW_ARCHIVE, "never built"
    if job.incomplete:
        return OUTPUTS_MISSING, "incomplete: " + ", ".join(job.incomplete)
    if job.missing:
        return OUTPUTS_MISSING, "missing: " + ", ".join(job.missing)
    changed = set(job.updated_inputs)
    if changed - {profile_path}:
        return ARCHIVE_CHANGED, ", ".join(sorted(changed - {profile_path}))
    if changed:
        return PROFILE_CHANGED, profile_path
    if job.input_set_changed:
        if profile_path not in job.previous_inputs:
            return PROFILE_CHANGED, f"now {profile_path}"
        return ARCHIVE_CHANGED, "a different archive path"
    return CODE_CHANGED, f"rule {job.rule}"


def bundle_reason(jobs: list[JobFacts], profile_path: str) -> tuple[str, str]:
    """One bundle's reason: the most decisive over its jobs (refining first, then packing)."""
    found = [classify(job, profile_path) for job in jobs]
    return min(found, key=lambda pair: REASONS.index(pair[0]))


@dataclass(frozen=True)
class PlannedBundle:
    bundle: str
    reason: str
    detail: str = ""

    def as_dict(self) -> dict:
        return {"bundle": self.bundle, "reason": self.reason, "detail": self.detail}


@dataclass(frozen=True)
class DryRun:
    """What a run would do: the bundles to (re)build with why, how many are up to date."""

    would_build: list[PlannedBundle]
    up_to_date: int
    run_jobs: list[str] = field(default_factory=list)  # run-level jobs that would run (data_docs, gate)
    note: str = ""

    @property
    def nothing_to_do(self) -> bool:
        return not self.would_build and not self.run_jobs

    def as_dict(self) -> dict:
        return {
            "bundles": [b.as_dict() for b in self.would_build],
            "up_to_date": self.up_to_date,
            "run_jobs": list(self.run_jobs),
            "note": self.note,
        }

    def describe(self) -> str:
        """A short human summary, e.g. for the CLI after its per-bundle lines."""
        counts: dict[str, int] = {}
        for bundle in self.would_build:
            counts[bundle.reason] = counts.get(bundle.reason, 0) + 1
        why = "; ".join(f"{n} {reason}" for reason, n in sorted(counts.items(), key=lambda i: REASONS.index(i[0])))
        if not self.would_build:
            return f"No bundle to (re)build; {self.up_to_date} up to date."
        return f"{len(self.would_build)} bundles would be (re)built ({why}); {self.up_to_date} up to date."
