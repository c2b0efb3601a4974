"""Typed errors that name the offending file and the problem."""

from __future__ import annotations


class AdvError(Exception):
    """Base class for every error this package raises on purpose."""


class AudioError(AdvError):
    """An input could not be used as audio."""

    reason = "unusable audio"

    def __init__(self, path: object, detail: str = ""):
        self.path = str(path)
        self.detail = detail
        msg = f"{self.path}: {self.reason}"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)


class FileMissingError(AudioError):
    reason = "file not found"


class EmptyAudioError(AudioError):
    reason = "file is empty or holds no audio samples"


class NotAudioError(AudioError):
    reason = "not a recognised audio file"


class CorruptAudioError(AudioError):
    reason = "audio data is truncated or corrupt"


class InvalidSamplesError(AudioError):
    reason = "audio contains invalid samples"


class TooShortError(AudioError):
    reason = "audio is too short to analyse"


class TooLongError(AudioError):
    reason = "audio is longer than the analysis limit"


class UnreadableError(AudioError):
    reason = "cannot be read"


class OutputError(AdvError):
    """An output location cannot be used (exists as a file, not writable, holds a file the tool
    did not write); raised before any work starts."""


class CheckpointError(AdvError):
    """A model checkpoint is missing, corrupt or of the wrong format."""


class ConfigError(AdvError, ValueError):
    """A config file lacks a table, or holds a value out of range (names the file or table)."""
