"""Community protocols: what each TK/BC label demands, loaded from YAML files and validated on load.

The built-in file is ``policies/protocols/local_contexts.yaml``; every other ``*.yaml`` in that folder (or in
the folders given) extends it without code changes. A label defined twice takes the stricter union of both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from heirloom.errors import ProtocolError

Action = Literal["preserve", "train_model", "synthesize", "serve_clip", "export"]
ACTIONS: tuple[Action, ...] = ("preserve", "train_model", "synthesize", "serve_clip", "export")
BUILTIN_DIR = Path(__file__).parent / "protocols"
_MONTH_DAY = re.compile(r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")


class _Window(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    start: str = Field(alias="from")
    end: str = Field(alias="to")

    @field_validator("start", "end")
    @classmethod
    def _month_day(cls, v: str) -> str:
        if not _MONTH_DAY.match(v):
            raise ValueError(f"{v!r} is not a month-day like '11-01'")
        return v


class _Label(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = ""
    obligations: list[Literal["credit_line", "disclosure_text"]] = []
    forbid_purposes: list[str] = []
    audiences: list[str] = []
    windows: list[_Window] = []
    never: list[Action] = []
    needs_authority: list[Action] = []
    every_community: bool = False
    community_review: bool = False


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    labels: dict[str, _Label]

    @field_validator("labels")
    @classmethod
    def _names(cls, v: dict[str, _Label]) -> dict[str, _Label]:
        for name in v:
            if not re.match(r"^[a-z0-9][a-z0-9_:.-]*$", name):
                raise ValueError(f"label name {name!r} must be lowercase letters, digits, '_', ':', '.', '-'")
        return v


@dataclass(frozen=True, slots=True)
class LabelRule:
    name: str
    description: str = ""
    obligations: frozenset[str] = frozenset()
    forbid_purposes: frozenset[str] = frozenset()
    audiences: frozenset[str] = frozenset()
    windows: tuple[tuple[str, str], ...] = ()
    never: frozenset[str] = frozenset()
    needs_authority: frozenset[str] = frozenset()
    every_community: bool = False
    community_review: bool = False

    def in_season(self, at: datetime) -> bool:
        """True when ``at`` falls inside any window (a window may wrap over the new year)."""
        if not self.windows:
            return True
        md = at.strftime("%m-%d")
        return any((start <= md <= end) if start <= end else (md >= start or md <= end) for start, end in self.windows)

    def merged(self, other: LabelRule) -> LabelRule:
        """The stricter union (more obligations and bans, fewer audiences); a later file's season replaces
        the earlier one, since a community sets its own."""
        audiences = (
            self.audiences & other.audiences if self.audiences and other.audiences else self.audiences | other.audiences
        )
        return LabelRule(
            name=self.name,
            description=self.description or other.description,
            obligations=self.obligations | other.obligations,
            forbid_purposes=self.forbid_purposes | other.forbid_purposes,
            audiences=audiences,
            windows=other.windows or self.windows,
            never=self.never | other.never,
            needs_authority=self.needs_authority | other.needs_authority,
            every_community=self.every_community or other.every_community,
            community_review=self.community_review or other.community_review,
        )


@dataclass(frozen=True, slots=True)
class Protocols:
    labels: dict[str, LabelRule] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    def rule(self, label: str) -> LabelRule | None:
        return self.labels.get(label)


def parse_protocol_file(text: str, *, where: str) -> dict[str, LabelRule]:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ProtocolError(where, f"is not valid YAML: {e}") from e
    try:
        parsed = _File.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors())
        raise ProtocolError(where, problems) from e
    return {
        name: LabelRule(
            name=name,
            description=lab.description,
            obligations=frozenset(lab.obligations),
            forbid_purposes=frozenset(lab.forbid_purposes),
            audiences=frozenset(lab.audiences),
            windows=tuple((w.start, w.end) for w in lab.windows),
            never=frozenset(lab.never),
            needs_authority=frozenset(lab.needs_authority),
            every_community=lab.every_community,
            community_review=lab.community_review,
        )
        for name, lab in parsed.labels.items()
    }


def load_protocols(extra_dirs: Iterable[Path] = ()) -> Protocols:
    """The built-in labels plus every ``*.yaml`` in ``policies/protocols/`` and in ``extra_dirs``."""
    files = sorted(BUILTIN_DIR.glob("*.yaml"), key=lambda p: (p.name != "local_contexts.yaml", p.name))
    for d in extra_dirs:
        files += sorted(Path(d).glob("*.yaml"))
    labels: dict[str, LabelRule] = {}
    for path in files:
        for name, rule in parse_protocol_file(path.read_text(encoding="utf-8"), where=str(path)).items():
            labels[name] = labels[name].merged(rule) if name in labels else rule
    return Protocols(labels=labels, sources=tuple(str(p) for p in files))
