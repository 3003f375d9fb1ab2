"""Errors sheetfill raises on purpose: each message names the problem and the fix."""


class SheetfillError(Exception):
    """Base class: anything sheetfill reports to the user without a traceback."""


class ConfigError(SheetfillError):
    """The workflow configuration is invalid; raised before any job runs."""


class ProfileError(SheetfillError):
    """A data profile (YAML) is missing or invalid."""


class BundleError(SheetfillError):
    """One bundle's content is unusable (corrupt zip, unsafe member, unreadable sheet).

    The bundle is recorded as failed_processing; the other bundles carry on.
    """
