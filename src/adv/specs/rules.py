"""One delivery rule, parsed from text, and the check of an analysis result against a list of them.

Grammar: ``TERM [and TERM]... [or TERM [and TERM]...]`` (``and`` binds tighter), each term
``NAME OP VALUE`` with OP one of ``<= >= < > == !=`` and VALUE a number, ``true``/``false`` or, for
``distortion_type``, a class name. NAME is a track measurement (``true_peak_dbtp``,
``integrated_lufs``, ``clipped_fraction``, ... see adv.measurements.TRACK_KEYS), a verdict field
(``has_distortion``, ``distortion_type``, ``severity``, ``worst_severity``, ``confidence``,
``duration``, ``sample_rate``, ``channels``) or ``KIND.probability`` / ``KIND.detected`` /
``KIND.severity`` for a damage kind (``mp3.detected == false``).

A term whose value is ``null`` in the result (a stereo measure of a mono file, the loudness of
silence) is not applicable: a rule fails only when it is false on the values that exist, and one
with no applicable term at all is reported as not applicable, not as failed.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field

from adv import CLASSES, DISTORTION_KINDS
from adv.errors import AdvError
from adv.measurements import TRACK_KEYS

_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt, "==": operator.eq, "!=": operator.ne}
_VERDICT = (
    "has_distortion",
    "distortion_type",
    "severity",
    "worst_severity",
    "confidence",
    "duration",
    "sample_rate",
    "channels",
)
_KIND_FIELDS = ("probability", "detected", "severity")
NAMES = (
    tuple(k for k in TRACK_KEYS if k != "clipping_per_channel")
    + _VERDICT
    + tuple(f"{k}.{f}" for k in DISTORTION_KINDS for f in _KIND_FIELDS)
)
_TERM = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$")


class RuleError(AdvError, ValueError):
    """A rule that cannot be parsed (unknown name, operator or value)."""


@dataclass(frozen=True)
class Term:
    name: str
    op: str
    value: float | bool | str

    def text(self) -> str:
        v = str(self.value).lower() if isinstance(self.value, bool) else self.value
        return f"{self.name} {self.op} {v:g}" if isinstance(v, float) else f"{self.name} {self.op} {v}"


@dataclass(frozen=True)
class Rule:
    """``any`` of the alternatives holds, each ``all`` of its terms; ``source`` says where it comes from."""

    text: str
    alternatives: tuple[tuple[Term, ...], ...]
    source: str | None = None
    why: str | None = None
    profile: str | None = None
    names: tuple[str, ...] = field(default=(), compare=False)


def _value(name: str, raw: str, rule: str) -> float | bool | str:
    low = raw.lower()
    if name == "distortion_type":
        if low not in CLASSES:
            raise RuleError(f"rule {rule!r}: distortion_type is one of {', '.join(CLASSES)}, not {raw!r}")
        return low
    if low in ("true", "false"):
        return low == "true"
    try:
        return float(raw)
    except ValueError:
        raise RuleError(f"rule {rule!r}: {raw!r} is not a number, true or false") from None


def _term(text: str, rule: str) -> Term:
    m = _TERM.match(text)
    if not m:
        raise RuleError(f"rule {rule!r}: expected NAME OP VALUE (OP one of {' '.join(_OPS)}), got {text.strip()!r}")
    name, op, raw = m.groups()
    if name not in NAMES:
        close = [n for n in NAMES if n.split(".")[-1] == name.split(".")[-1] or name in n][:4]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise RuleError(
            f"rule {rule!r}: unknown name {name!r}{hint}; names: measurements such as "
            "true_peak_dbtp, integrated_lufs, clipped_fraction; has_distortion, severity, ...; "
            "KIND.probability / KIND.detected / KIND.severity"
        )
    value = _value(name, raw, rule)
    if isinstance(value, (bool, str)) and op not in ("==", "!="):
        raise RuleError(f"rule {rule!r}: {value!r} can only be compared with == or !=")
    return Term(name, op, value)


def parse_rule(text: str, *, source: str | None = None, why: str | None = None, profile: str | None = None) -> Rule:
    """Parses ``text`` (see the module docstring); raises RuleError naming the problem."""
    if not isinstance(text, str) or not text.strip():
        raise RuleError("empty rule")
    alts = tuple(
        tuple(_term(t, text) for t in re.split(r"\s+and\s+", alt)) for alt in re.split(r"\s+or\s+", text.strip())
    )
    names = tuple(dict.fromkeys(t.name for alt in alts for t in alt))
    return Rule(text.strip(), alts, source, why, profile, names)


def lookup(result: dict, name: str):
    """The value ``name`` refers to in an analysis result (None when absent or not applicable)."""
    if "." in name:
        kind, fld = name.split(".", 1)
        return ((result.get("types") or {}).get(kind) or {}).get(fld)
    if name in _VERDICT:
        return result.get(name)
    return (result.get("measurements") or {}).get(name)


def _holds(term: Term, value) -> bool | None:
    if value is None:
        return None
    if isinstance(term.value, bool):
        value = bool(value)
    elif isinstance(term.value, float):
        value = float(value)
    return bool(_OPS[term.op](value, term.value))


def evaluate(rule: Rule, result: dict) -> bool | None:
    """True (holds), False (fails) or None (no applicable term)."""
    outcomes = []
    for alt in rule.alternatives:
        held = [_holds(t, lookup(result, t.name)) for t in alt]
        known = [h for h in held if h is not None]
        outcomes.append(None if not known else all(known))
    known = [o for o in outcomes if o is not None]
    return None if not known else any(known)


def check_result(result: dict, rules: list[Rule]) -> dict:
    """``{"passed", "failed": [{"rule", "values", "source", "profile"}], "not_applicable": [rule text]}``."""
    failed, na = [], []
    for rule in rules:
        outcome = evaluate(rule, result)
        if outcome is None:
            na.append(rule.text)
        elif not outcome:
            failed.append(
                {
                    "rule": rule.text,
                    "values": {n: lookup(result, n) for n in rule.names},
                    "source": rule.source,
                    "profile": rule.profile,
                }
            )
    return {"passed": not failed, "failed": failed, "not_applicable": na}


def apply_rules(result: dict, rules: list[Rule] | None) -> dict:
    """``result`` with its ``checks`` entry set from ``rules`` (error entries and no rules: unchanged)."""
    if rules and "error" not in result:
        result["checks"] = check_result(result, rules)
    return result
