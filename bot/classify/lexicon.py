"""The lexicon (`lexicon.toml`): weighted terms per team, general and urgency cues, context rules
and aliases, read and checked into a `Lexicon` the classifier scores with."""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.core.teams import GENERAL, TEAM_NAMES

DEFAULT_LEXICON = Path(__file__).with_name("lexicon.toml")
_TIERS = ("strong", "normal", "weak")
DOMAIN_IDS: tuple[str, ...] = tuple(TEAM_NAMES)


@dataclass(frozen=True, slots=True)
class Rule:
    """Context rule: when every group has a word in the text, adjust domain scores."""

    name: str
    groups: tuple[re.Pattern[str], ...]
    add: dict[str, float]


@dataclass(slots=True)
class Lexicon:
    """The keyword data of `lexicon.toml`: weighted terms per domain, general and urgency cues."""

    version: int
    team_names: dict[str, str]
    settings: dict[str, float]
    # term (lower case) -> ((label, weight), ...); label is a domain id or GENERAL
    terms: dict[str, tuple[tuple[str, float], ...]]
    # context-free keywords per domain (for tests and suggestions), excluding `ambiguous` ones
    keywords: dict[str, tuple[str, ...]]
    urgency: tuple[str, ...]
    confidential: tuple[str, ...]
    rules: tuple[Rule, ...]
    aliases: dict[str, str]
    digest: str = ""
    fuzzy_terms: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def load(cls, path: Path | None = None) -> Lexicon:
        """Read and validate a lexicon toml file (default: bot/lexicon.toml)."""
        path = path or DEFAULT_LEXICON
        raw = path.read_bytes()
        return cls.from_toml(tomllib.loads(raw.decode("utf-8")), hashlib.sha256(raw).hexdigest())

    @classmethod
    def from_toml(cls, data: Mapping[str, Any], digest: str = "") -> Lexicon:
        """Build a lexicon from parsed toml data."""
        weights = {t: float(data["weights"][t]) for t in _TIERS}
        fuzzy_tiers = set(data.get("fuzzy_tiers", ["strong", "normal"]))
        bonus = float(data.get("settings", {}).get("length_bonus", 0.0))
        terms: dict[str, dict[str, float]] = {}
        keywords: dict[str, tuple[str, ...]] = {}
        team_names: dict[str, str] = {}
        fuzzy: set[str] = set()
        ambiguous_of: dict[str, set[str]] = {}

        def put(term: str, label: str, weight: float, *, exact: bool = False) -> None:
            key = term.strip().lower()
            if not key:
                raise ValueError(f"empty term for {label}")
            slot = terms.setdefault(key, {})
            # a word listed in two tiers keeps its strongest weight unless weighted explicitly
            if exact or weight < 0 or label not in slot:
                slot[label] = weight
            else:
                slot[label] = max(slot[label], weight)

        for dom in data["domains"]:
            did = dom["id"]
            if did not in DOMAIN_IDS:
                raise ValueError(f"unknown domain id {did!r} in lexicon")
            team_names[did] = dom["team"]
            ambiguous = {w.lower() for w in dom.get("ambiguous", [])}
            own: list[str] = []
            for tier in _TIERS:
                for word in dom.get(tier, []):
                    # longer phrases are more specific: they win ties against short words
                    extra = bonus * min(len(word) - 2, 4) if tier != "weak" and len(word) > 2 else 0
                    put(word, did, weights[tier] + extra)
                    if tier in fuzzy_tiers:
                        fuzzy.add(word.lower())
                    if tier != "weak" and word.lower() not in ambiguous:
                        own.append(word)
            for word in ambiguous:
                put(word, did, weights["weak"])
            for word, w in dom.get("weighted", {}).items():
                put(word, did, float(w), exact=True)
            for word, w in dom.get("negative", {}).items():
                put(word, did, -abs(float(w)))
            keywords[did] = tuple(dict.fromkeys(own))
            ambiguous_of[did] = ambiguous
        for did, own_words in keywords.items():
            # context-free keywords: decisive on their own (at least a normal weight)
            keywords[did] = tuple(
                w
                for w in own_words
                if dict(terms[w.lower()]).get(did, 0.0) >= weights["normal"]
                and w.lower() not in ambiguous_of[did]
            )
        missing = set(DOMAIN_IDS) - set(team_names)
        if missing:
            raise ValueError(f"lexicon lacks domains {sorted(missing)}")
        gen = data.get("general", {})
        for tier in _TIERS:
            for word in gen.get(tier, []):
                put(word, GENERAL, weights[tier])
        rules = tuple(
            Rule(
                name=r["name"],
                groups=tuple(re.compile("|".join(map(re.escape, g))) for g in r["all"]),
                add={k: float(v) for k, v in r["add"].items()},
            )
            for r in data.get("rules", [])
        )
        for r in rules:
            unknown = set(r.add) - {*DOMAIN_IDS, GENERAL}
            if unknown:
                raise ValueError(f"rule {r.name!r} names unknown labels {sorted(unknown)}")
        aliases = {k.lower(): v.lower() for k, v in data.get("aliases", {}).items()}
        for alias, target in aliases.items():
            if target not in terms:
                raise ValueError(f"alias {alias!r} points to unknown term {target!r}")
            terms.setdefault(alias, terms[target])
        return cls(
            version=int(data["version"]),
            team_names=team_names,
            settings={k: float(v) for k, v in data.get("settings", {}).items()},
            terms={k: tuple(v.items()) for k, v in terms.items()},
            keywords=keywords,
            urgency=tuple(data.get("urgency", {}).get("cues", [])),
            confidential=tuple(data.get("confidential", {}).get("patterns", [])),
            rules=rules,
            aliases=aliases,
            digest=digest,
            fuzzy_terms=frozenset(fuzzy),
        )
