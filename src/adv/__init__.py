"""Audio Distortion Validator: detects clipping, MP3 artifacts, noise, EQ and phase damage in music."""

import os as _os

# CPU thread pools that spin while waiting make inference ~50x slower on a busy 2-core machine
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
#: version of the analysis result's JSON shape (docs/output_format.md); bumped when a key changes meaning or goes
RESULT_SCHEMA_VERSION = "1.0"

CLASSES = ("clean", "clipping", "mp3", "noise", "eq", "phase")
DISTORTION_KINDS = CLASSES[1:]


def __getattr__(name):  # lazy: importing adv must not load torch
    if name == "AudioDistortionValidator":
        from adv.inference.validator import AudioDistortionValidator

        return AudioDistortionValidator
    raise AttributeError(name)
