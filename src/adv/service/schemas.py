"""Response schemas of the HTTP service and its documented error answers (they make /docs)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ErrorBody(BaseModel):
    """Body of every 4xx/5xx answer produced by the service."""

    error: str = Field(description="error type, e.g. NotAudioError, CorruptAudioError, FileTooLarge")
    detail: str = Field(description="human-readable message naming the uploaded file")
    filename: str | None = Field(None, description="the client's file name, when the error concerns one file")


class FileError(ErrorBody):
    """A batch entry for a file that could not be analysed."""

    filename: str
    status_code: int = Field(description="the status a single /analyze of this file would have returned")


class TypeScore(BaseModel):
    model_config = ConfigDict(extra="allow")

    probability: float = Field(
        description="0..1: mean over the windows (over the clearly damaged run's "
        "windows when only the run makes the track damaged)"
    )
    threshold: float = Field(description="the probability this kind needs to be detected")
    detected: bool = Field(description="probability >= threshold")
    severity: float = Field(description="0..100, median over the flagged windows")
    worst_severity: float = Field(description="0..100")
    flagged_windows: int


class Segment(BaseModel):
    model_config = ConfigDict(extra="allow")

    start: float = Field(description="seconds")
    end: float = Field(description="seconds")
    has_distortion: bool
    distortion_type: str
    confidence: float = Field(description="0..1")
    probabilities: dict[str, float] = Field(description="class -> probability")
    severity: dict[str, float] = Field(description="distortion -> severity 0..100")
    measurements: dict | None = Field(
        None, description="the window's measurements at the file's own rate (adv.measurements.WINDOW_KEYS)"
    )


class Section(BaseModel):
    start: float = Field(description="seconds")
    end: float = Field(description="seconds")
    kind: str | None = Field(None, description="the kind clearly present in every window of the run")


class AnalysisResult(BaseModel):
    model_config = ConfigDict(extra="allow")

    filename: str = Field(description="the client's file name")
    has_distortion: bool
    schema_version: str = Field(description="version of this result's shape (docs/output_format.md)")
    distortion_type: str = Field(description="clean, clipping, mp3, noise, eq or phase")
    severity: float = Field(description="0..100 for the main distortion (0 when clean)")
    worst_severity: float | None = Field(None, description="0..100, worst window")
    confidence: float = Field(description="0..1, confidence in the verdict")
    types: dict[str, TypeScore] = Field(description="per distortion type")
    detected_types: list[str]
    section: Section | None = Field(
        None,
        description="the longest run of clearly damaged windows (at least 3), "
        "which alone makes a track damaged; None when there is none",
    )
    segments: list[Segment] | None = Field(None, description="per-window timeline (omitted with segments=false)")
    duration: float = Field(description="seconds")
    sample_rate: int = Field(description="of the uploaded file")
    channels: int = Field(description="of the uploaded file")
    format: str = Field(description="container sniffed from the content")
    measurements: dict | None = Field(
        None,
        description="track measurements at the file's own rate "
        "(adv.measurements.TRACK_KEYS): peaks, loudness, clipping, cut-off, noise, stereo",
    )
    notes: list[str]
    model_version: str | None
    analysis_ms: float
    decode_ms: float


class BatchResponse(BaseModel):
    n_files: int
    n_errors: int
    results: list[AnalysisResult | FileError] = Field(description="in upload order; entries with 'error' failed")


class Health(BaseModel):
    status: str = "ok"
    model_loaded: bool
    version: str = Field(description="package version")


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    package_version: str
    model_version: str | None
    classes: list[str]


#: the documented error answers (``responses=`` of the routes), by status code
ERROR_RESPONSES: dict[int | str, dict] = {
    400: {"model": ErrorBody, "description": "malformed request (not multipart, missing field, too many files)"},
    401: {"model": ErrorBody, "description": "missing or wrong X-API-Key (only when the server has a key)"},
    408: {"model": ErrorBody, "description": "the upload was too slow (pauses or total time over the limits)"},
    413: {"model": ErrorBody, "description": "upload larger than the limit, or audio longer than the limit"},
    415: {"model": ErrorBody, "description": "content is not a recognised audio format"},
    422: {"model": ErrorBody, "description": "unusable audio: empty, truncated, corrupt, invalid samples, too short"},
    500: {"model": ErrorBody, "description": "unexpected server error"},
    503: {"model": ErrorBody, "description": "the model could not be loaded"},
}
