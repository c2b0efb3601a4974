"""The HTTP service's settings: one class, read from arguments or ADV_* environment variables and
validated once, so a bad value stops start-up with one line naming it (a ConfigError)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields

from adv.audio_io import DEFAULT_MAX_AUDIO_SECONDS
from adv.errors import ConfigError


@dataclass(frozen=True)
class ServiceSettings:
    """Limits and options of one app. Every field has an ADV_* variable (``ENV`` below)."""

    max_upload_mb: float = 100.0  # per uploaded file
    api_key: str | None = None  # when set, X-API-Key is required (all but /health and the docs)
    max_concurrent: int = 2  # analyses running at once
    tmp_dir: str | None = None  # where uploads are spooled (default: the system temp folder)
    max_batch_files: int = 20  # files per /analyze/batch request
    max_audio_seconds: float = DEFAULT_MAX_AUDIO_SECONDS  # longer audio is refused with 413
    header_timeout_s: float = 10.0  # a connection must send its request headers within this
    body_idle_timeout_s: float = 30.0  # longest pause between two pieces of an upload
    upload_timeout_s: float = 600.0  # a whole request body must arrive within this

    @property
    def max_upload_bytes(self) -> int:
        return max(1, int(self.max_upload_mb * 1_000_000))

    def environ(self) -> dict[str, str]:
        """These settings as ADV_* variables (the ones set), e.g. for worker processes: load_settings()
        there gives back the same settings."""
        return {ENV[f.name]: str(value) for f in fields(self) if (value := getattr(self, f.name)) is not None}

    def __post_init__(self) -> None:
        for name in (
            "max_upload_mb",
            "max_audio_seconds",
            "header_timeout_s",
            "body_idle_timeout_s",
            "upload_timeout_s",
        ):
            _check_positive(name, getattr(self, name))
        for name in ("max_concurrent", "max_batch_files"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}={value!r}: expected a whole number of at least 1")


ENV = {
    "max_upload_mb": "ADV_MAX_UPLOAD_MB",
    "api_key": "ADV_API_KEY",
    "max_concurrent": "ADV_MAX_CONCURRENT",
    "tmp_dir": "ADV_TMP_DIR",
    "max_batch_files": "ADV_MAX_BATCH_FILES",
    "max_audio_seconds": "ADV_MAX_AUDIO_SECONDS",
    "header_timeout_s": "ADV_HEADER_TIMEOUT_S",
    "body_idle_timeout_s": "ADV_BODY_IDLE_TIMEOUT_S",
    "upload_timeout_s": "ADV_UPLOAD_TIMEOUT_S",
}


def _check_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name}={value!r}: expected a positive, finite number")


def _parse(name: str, raw: str, kind: type) -> object:
    """An environment value as ``kind``; ConfigError naming the variable when it is not one."""
    var = ENV[name]
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if kind is float and value is not None and not (math.isfinite(value) and value > 0):
        value = None
    if kind is int and value is not None and value < 1:
        value = None
    if value is None:
        what = "a whole number of at least 1" if kind is int else "a positive, finite number"
        raise ConfigError(f"environment variable {var}={raw!r}: expected {what}")
    return value


def load_settings(**given: object) -> ServiceSettings:
    """Settings from keyword arguments (None: not given), else the ADV_* variables, else the defaults."""
    unknown = set(given) - set(ENV)
    if unknown:
        raise TypeError(f"unknown service settings: {sorted(unknown)}")
    values: dict[str, object] = {}
    for f in fields(ServiceSettings):
        value = given.get(f.name)
        if value is None:
            raw = os.environ.get(ENV[f.name], "").strip()
            if not raw:
                continue
            kind = {"int": int, "float": float}.get(str(f.type), str)
            value = _parse(f.name, raw, kind) if kind is not str else raw
        values[f.name] = value
    for name in ("max_upload_mb", "max_audio_seconds"):
        if isinstance(values.get(name), int) and not isinstance(values[name], bool):
            values[name] = float(values[name])
    if values.get("tmp_dir") is not None:
        values["tmp_dir"] = str(values["tmp_dir"])
    if not values.get("api_key"):
        values["api_key"] = None
    return ServiceSettings(**values)
