"""The service's fixed settings: where it runs Snakemake, with which config, and how it guards the API.

archive_root, restore_root and the data profile come from the server's config file only: a request
chooses a window and versions, never a path.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from sheetfill.errors import ConfigError
from sheetfill.runs.config import REPO_ROOT, Settings, load_settings, load_yaml

PATH_KEYS = ("archive_root", "restore_root", "cursor_file")
WINDOW_KEYS = ("since", "until", "versions")  # what a request may set
TOKEN_VARIABLE = "SHEETFILL_TOKEN"


@dataclass(frozen=True)
class ServiceSettings:
    workdir: Path  # Snakemake's working directory (holds config/config.yaml and .snakemake/)
    snakefile: Path
    config: dict  # the server's effective config, paths absolute; requests add WINDOW_KEYS only
    sheetfill: Settings
    configfile: Path
    token: str | None = None
    cores: int = 2
    heartbeat_timeout_s: float = 30.0
    max_body_bytes: int = 16 * 1024
    poll_s: float = 0.2

    @property
    def restore_root(self) -> Path:
        return Path(self.sheetfill.restore_root)

    @property
    def heartbeat_s(self) -> float:
        return max(0.2, self.heartbeat_timeout_s / 6)

    def run_config(self, since=None, until=None, versions=None, bundles=None) -> dict:
        """The server's config with a request's window (and chosen bundles): all a request can change."""
        window = {"since": since, "until": until, "versions": versions}
        return {**self.config, **window, **({"bundles": list(bundles)} if bundles else {})}


def load_service_settings(workdir=None, configfile=None, token: str | None = None, **options) -> ServiceSettings:
    """Read config/config.yaml of the workflow directory (or configfile), like `snakemake` does."""
    workdir = Path(workdir or os.getcwd()).resolve()
    path = Path(configfile) if configfile else workdir / "config" / "config.yaml"
    path = path if path.is_absolute() else (workdir / path)
    if not path.is_file():
        raise ConfigError(
            f"No config file {path}: start `sheetfill serve` in the workflow directory (it reads "
            "config/config.yaml, like snakemake) or pass --configfile."
        )
    config = _with_defaults(load_yaml(path.read_text()) or {}, workdir, path)
    config = {k: str((workdir / v).resolve()) if k in PATH_KEYS and v else v for k, v in config.items()}
    sheetfill = load_settings(config)
    snakefile = workdir / "Snakefile" if (workdir / "Snakefile").is_file() else REPO_ROOT / "Snakefile"
    return ServiceSettings(workdir, snakefile, config, sheetfill, path.resolve(), token=token or None, **options)


def _with_defaults(config: dict, workdir: Path, path: Path) -> dict:
    """Another --configfile extends the workflow's own config/config.yaml, as in Snakemake."""
    own = workdir / "config" / "config.yaml"
    if own.is_file() and own.resolve() != path.resolve():
        return {**(load_yaml(own.read_text()) or {}), **config}
    return config


def read_token(token_file=None) -> str | None:
    """--token-file wins over SHEETFILL_TOKEN; surrounding whitespace is not part of the token."""
    if token_file:
        try:
            text = Path(token_file).read_text().strip()
        except OSError as error:
            raise ConfigError(f"Cannot read --token-file {token_file}: {error.strerror}.") from None
        if not text:
            raise ConfigError(f"--token-file {token_file} is empty; put the token in it.")
        return text
    return os.environ.get(TOKEN_VARIABLE, "").strip() or None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"Binding to {host} (not loopback) needs a token: pass --token-file FILE or set {TOKEN_VARIABLE}."
        )
