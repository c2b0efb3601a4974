"""Delivery-spec checks: rules such as ``true_peak_dbtp <= -1`` on a result's measurements and
verdict, alone (``--require``) or as named profiles (``--profile streaming``, data files in
``profiles/`` with the published source of each rule)."""

from adv.specs.rules import Rule, RuleError, apply_rules, check_result, parse_rule
from adv.specs.profiles import PROFILE_DIR, Profile, load_profile, profile_names

__all__ = [
    "PROFILE_DIR",
    "Profile",
    "Rule",
    "RuleError",
    "apply_rules",
    "check_result",
    "load_profile",
    "parse_rule",
    "profile_names",
]
