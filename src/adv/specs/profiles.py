"""Named rule sets (``--profile NAME``): TOML files in ``profiles/``, each rule with its source.

File format::

    description = "..."
    [[rule]]
    require = "true_peak_dbtp <= -1"
    why = "what it protects"
    source = "the published document it comes from"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from adv.specs.rules import Rule, RuleError, parse_rule

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    rules: tuple[Rule, ...]


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def load_profile(name_or_path: str) -> Profile:
    """A shipped profile by name, or a profile file by path; raises RuleError naming the problem."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILE_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise RuleError(
            f"unknown profile {name_or_path!r}: shipped profiles are {', '.join(profile_names())}, "
            "or give the path of a .toml profile file"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RuleError(f"{path}: not a readable profile ({exc})") from None
    entries = data.get("rule")
    if not isinstance(entries, list) or not entries:
        raise RuleError(f"{path}: a profile needs at least one [[rule]] with a `require` expression")
    rules = []
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("require"), str):
            raise RuleError(f"{path}: rule {i} has no `require` expression")
        rules.append(parse_rule(entry["require"], source=entry.get("source"), why=entry.get("why"), profile=path.stem))
    return Profile(path.stem, str(data.get("description", "")), tuple(rules))
