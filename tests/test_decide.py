"""Table-driven tests of ``decide``: every rule and label, and a property that revoked scopes never pass."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.manifests import ConsentRecord
from heirloom.errors import ProtocolError
from heirloom.vocabulary import SCOPES
from policies.consent import chain_breaks, in_force, record_hash
from policies.decide import BearerFacts, Context, MaterialFacts, Subject, decide
from policies.protocols import load_protocols, parse_protocol_file

T0 = datetime(2026, 1, 10, 12, tzinfo=UTC)
WINTER = datetime(2026, 12, 15, tzinfo=UTC)
SUMMER = datetime(2026, 7, 1, tzinfo=UTC)
ALL = tuple(SCOPES)
SHA = "e" * 64


def rec(
    cid: str = "c1", bearer: str = "b-1", grantor_type: str = "self", grantor_id: str = "b-1", scopes=ALL, **kw
) -> ConsentRecord:
    base = dict(
        consent_id=cid,
        bearer_id=bearer,
        bearer_status="living",
        grantor_type=grantor_type,
        grantor_id=grantor_id,
        scopes=tuple(scopes),
        valid_from=T0 - timedelta(days=30),
        recorded_at=T0 - timedelta(days=30),
        credit_line="Sung by a tradition-bearer of Kilbrannan",
    )
    return ConsentRecord(**{**base, **kw})


LIVING = BearerFacts("b-1", "living", ("kil",))
DEAD = BearerFacts("b-1", "deceased", ("kil",))
EXHIBIT = dict(audience="general_public", purpose="exhibit")
REC = MaterialFacts("a" * 64)


def ctx(at: datetime = T0, **kw) -> Context:
    return Context(at=at, **kw)


CASES = [
    # (name, action, bearer, records, material labels, context, allowed, reason fragment)
    ("silence means no", "train_model", LIVING, [], (), ctx(), False, "silence means no"),
    ("full self grant trains", "train_model", LIVING, [rec()], (), ctx(), True, "allowed"),
    (
        "training needs voice_synthesis too",
        "train_model",
        LIVING,
        [rec(scopes=("model_training",))],
        (),
        ctx(),
        False,
        "voice_synthesis",
    ),
    ("preserve only", "preserve", LIVING, [rec(scopes=("preserve",))], (), ctx(), True, "allowed"),
    (
        "expired consent does not count",
        "train_model",
        LIVING,
        [rec(valid_until=T0 - timedelta(days=1))],
        (),
        ctx(),
        False,
        "silence",
    ),
    ("not yet valid", "train_model", LIVING, [rec(valid_from=T0 + timedelta(days=1))], (), ctx(), False, "silence"),
    (
        "superseded consent does not count",
        "train_model",
        LIVING,
        [rec(), rec("c2", supersedes_id="c1", scopes=("preserve",), recorded_at=T0 - timedelta(days=1))],
        (),
        ctx(),
        False,
        "model_training",
    ),
    (
        "revoked record",
        "preserve",
        LIVING,
        [rec(), rec("c2", supersedes_id="c1", scopes=(), status="revoked", recorded_at=T0 - timedelta(days=1))],
        (),
        ctx(),
        False,
        "silence",
    ),
    (
        "someone else's self grant",
        "train_model",
        LIVING,
        [rec(grantor_id="b-2")],
        (),
        ctx(),
        False,
        "must come from the bearer",
    ),
    (
        "family cannot grant for the living",
        "train_model",
        LIVING,
        [rec(grantor_type="family", grantor_id="fam")],
        (),
        ctx(),
        False,
        "cannot grant for a living",
    ),
    (
        "guardian needs evidence",
        "train_model",
        LIVING,
        [rec(grantor_type="legal_guardian", grantor_id="g")],
        (),
        ctx(),
        False,
        "needs evidence",
    ),
    (
        "guardian with evidence",
        "train_model",
        LIVING,
        [rec(grantor_type="legal_guardian", grantor_id="g", evidence_sha256=SHA)],
        (),
        ctx(),
        True,
        "allowed",
    ),
    (
        "community grant alone is not the bearer's",
        "train_model",
        LIVING,
        [rec(grantor_type="community_authority", grantor_id="kil")],
        (),
        ctx(),
        False,
        "granted by the bearer",
    ),
    ("deceased: own old grant no longer counts", "train_model", DEAD, [rec()], (), ctx(), False, "only custodians"),
    (
        "deceased: custodian without evidence",
        "train_model",
        DEAD,
        [rec(grantor_type="family", grantor_id="fam")],
        (),
        ctx(),
        False,
        "needs evidence",
    ),
    (
        "deceased: custodian with evidence",
        "train_model",
        DEAD,
        [rec(grantor_type="family", grantor_id="fam", evidence_sha256=SHA)],
        (),
        ctx(),
        True,
        "allowed",
    ),
    (
        "secret/sacred never trains",
        "train_model",
        LIVING,
        [rec()],
        ("tk_secret_sacred",),
        ctx(),
        False,
        "forbids train_model",
    ),
    (
        "women restricted never trains",
        "train_model",
        LIVING,
        [rec()],
        ("tk_women_restricted",),
        ctx(),
        False,
        "forbids train_model",
    ),
    (
        "men restricted never synthesizes",
        "synthesize",
        LIVING,
        [rec()],
        ("tk_men_restricted",),
        ctx(**EXHIBIT),
        False,
        "forbids synthesize",
    ),
    (
        "excluded recording stays out",
        "train_model",
        LIVING,
        [rec(excluded_recordings=(REC.recording_id,))],
        (),
        ctx(),
        False,
        "excluded",
    ),
    ("generation allowed", "synthesize", LIVING, [rec()], (), ctx(**EXHIBIT), True, "allowed"),
    ("generation needs audience and purpose", "synthesize", LIVING, [rec()], (), ctx(), False, "audience and purpose"),
    (
        "generation needs exhibit_generation",
        "synthesize",
        LIVING,
        [rec(scopes=("voice_synthesis",))],
        (),
        ctx(**EXHIBIT),
        False,
        "exhibit_generation",
    ),
    (
        "consent audience restriction",
        "serve_clip",
        LIVING,
        [rec(audiences=("community",))],
        (),
        ctx(**EXHIBIT),
        False,
        "outside what",
    ),
    (
        "community-only label vs public",
        "serve_clip",
        LIVING,
        [rec()],
        ("tk_community_use_only",),
        ctx(**EXHIBIT),
        False,
        "limits audiences",
    ),
    (
        "community-only label, community audience",
        "serve_clip",
        LIVING,
        [rec()],
        ("tk_community_use_only",),
        ctx(audience="community", purpose="exhibit"),
        True,
        "allowed",
    ),
    (
        "non-commercial label",
        "serve_clip",
        LIVING,
        [rec()],
        ("tk_non_commercial",),
        ctx(audience="general_public", purpose="commercial"),
        False,
        "forbids the purpose",
    ),
    (
        "commercial needs its scope",
        "serve_clip",
        LIVING,
        [rec(scopes=("exhibit_generation",))],
        (),
        ctx(audience="general_public", purpose="commercial"),
        False,
        "commercial",
    ),
    (
        "seasonal: in season",
        "serve_clip",
        LIVING,
        [rec(recorded_at=T0 - timedelta(days=400), valid_from=T0 - timedelta(days=400))],
        ("tk_seasonal",),
        ctx(WINTER, **EXHIBIT),
        True,
        "allowed",
    ),
    (
        "seasonal: out of season",
        "serve_clip",
        LIVING,
        [rec()],
        ("tk_seasonal",),
        ctx(SUMMER, **EXHIBIT),
        False,
        "seasonal",
    ),
    (
        "multiple communities: one missing",
        "train_model",
        BearerFacts("b-1", "living", ("kil", "ard")),
        [rec(), rec("c2", grantor_type="community_authority", grantor_id="kil")],
        ("tk_multiple_communities",),
        ctx(),
        False,
        "community ard",
    ),
    (
        "multiple communities: all granted",
        "train_model",
        BearerFacts("b-1", "living", ("kil", "ard")),
        [
            rec(),
            rec("c2", grantor_type="community_authority", grantor_id="kil"),
            rec("c3", grantor_type="community_authority", grantor_id="ard"),
        ],
        ("tk_multiple_communities",),
        ctx(),
        True,
        "allowed",
    ),
    (
        "culturally sensitive without authority",
        "synthesize",
        LIVING,
        [rec()],
        ("tk_culturally_sensitive",),
        ctx(**EXHIBIT),
        False,
        "needs a community authority",
    ),
    (
        "culturally sensitive with authority",
        "synthesize",
        LIVING,
        [
            rec(),
            rec("c2", grantor_type="community_authority", grantor_id="kil", tk_labels=("tk_culturally_sensitive",)),
        ],
        ("tk_culturally_sensitive",),
        ctx(**EXHIBIT),
        True,
        "allowed",
    ),
    (
        "secret/sacred export to community with authority",
        "export",
        LIVING,
        [rec(), rec("c2", grantor_type="community_authority", grantor_id="kil", tk_labels=("tk_secret_sacred",))],
        ("tk_secret_sacred",),
        ctx(audience="community", purpose="archive"),
        True,
        "allowed",
    ),
    (
        "secret/sacred export without authority",
        "export",
        LIVING,
        [rec()],
        ("tk_secret_sacred",),
        ctx(audience="community"),
        False,
        "needs a community authority",
    ),
    (
        "attribution without a credit line",
        "export",
        LIVING,
        [rec(credit_line=None)],
        ("tk_attribution",),
        ctx(audience="community"),
        False,
        "credit line",
    ),
    (
        "unknown label is refused",
        "export",
        LIVING,
        [rec()],
        ("tk_made_up",),
        ctx(audience="community"),
        False,
        "no protocol rule",
    ),
    (
        "research export needs research",
        "export",
        LIVING,
        [rec(scopes=("public_access",))],
        (),
        ctx(purpose="research"),
        False,
        "research",
    ),
]


@pytest.mark.parametrize(
    ("name", "action", "bearer", "records", "labels", "context", "allowed", "fragment"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_decide(name, action, bearer, records, labels, context, allowed, fragment) -> None:
    material = replace(REC, tk_labels=labels)
    d = decide(action, Subject(bearer, tuple(records), material), context)
    assert d.allowed is allowed, d.reasons
    assert any(fragment in r for r in d.reasons), d.reasons


def test_obligations_travel_with_generation() -> None:
    d = decide("synthesize", Subject(LIVING, (rec(disclosure_text="Synthetic voice."),), REC), ctx(**EXHIBIT))
    kinds = {o.kind: o.text for o in d.obligations}
    assert kinds == {
        "credit_line": "Sung by a tradition-bearer of Kilbrannan",
        "disclosure_text": "Synthetic voice.",
        "watermark_required": "clip id as payload",
    }
    assert d.consent_ids == ("c1",)


def test_decide_is_deterministic_and_does_not_mutate() -> None:
    records = (rec(),)
    subject = Subject(LIVING, records, REC)
    assert decide("train_model", subject, ctx()) == decide("train_model", subject, ctx())
    assert subject.consents == records


def test_in_force_orders_by_instant() -> None:
    r1 = rec()
    r2 = rec("c2", supersedes_id="c1", scopes=("preserve",), recorded_at=T0)
    assert in_force([r1, r2], T0 - timedelta(days=1)) == [r1]
    assert in_force([r1, r2], T0) == [r2]


def test_hash_chain_detects_tampering() -> None:
    r1 = rec()
    r1 = replace(r1, record_sha256=record_hash(r1.to_row()))
    r2 = rec("c2", supersedes_id="c1", recorded_at=T0, previous_sha256=r1.record_sha256)
    r2 = replace(r2, record_sha256=record_hash(r2.to_row()))
    assert chain_breaks([r1.to_row(), r2.to_row()]) == []
    forged = {**r1.to_row(), "scopes": ["preserve", "commercial"]}
    assert "altered after writing" in chain_breaks([forged, r2.to_row()])[0]
    rehashed = {**forged, "record_sha256": record_hash(forged)}
    assert "does not link" in chain_breaks([rehashed, r2.to_row()])[0]


def test_protocol_files_extend_and_are_validated(tmp_path: Path) -> None:
    (tmp_path / "kilbrannan.yaml").write_text(
        "labels:\n"
        "  tk_seasonal:\n    windows: [{from: '06-01', to: '08-31'}]\n"
        "  tk_kil_elders:\n    audiences: [elders]\n    never: [synthesize]\n"
    )
    protocols = load_protocols([tmp_path])
    assert protocols.rule("tk_seasonal").in_season(SUMMER)
    assert not protocols.rule("tk_seasonal").in_season(WINTER)
    d = decide(
        "synthesize", Subject(LIVING, (rec(),), replace(REC, tk_labels=("tk_kil_elders",))), ctx(**EXHIBIT), protocols
    )
    assert not d.allowed and any("tk_kil_elders forbids synthesize" in r for r in d.reasons)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("labels: [", "not valid YAML"),
        ("labels:\n  tk_x:\n    never: [fly]\n", "never"),
        ("labels:\n  tk_x:\n    windows: [{from: '13-01', to: '01-01'}]\n", "month-day"),
        ("labels:\n  tk_x:\n    colour: red\n", "colour"),
        ("labels:\n  TK X:\n    never: []\n", "label name"),
        ("lables: {}\n", "lables"),
    ],
)
def test_bad_protocol_files_get_clear_errors(text: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        parse_protocol_file(text, where="community.yaml")


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["grant", "revoke"]),
        st.sets(st.sampled_from(ALL), min_size=1, max_size=4),
        st.sampled_from(["self", "kil"]),
    ),
    min_size=1,
    max_size=12,
)
_ACTION_SCOPES = {
    "train_model": {"model_training", "voice_synthesis"},
    "serve_clip": {"exhibit_generation"},
    "preserve": {"preserve"},
}


@settings(max_examples=150, deadline=None)
@given(_OPS, st.sampled_from(sorted(_ACTION_SCOPES)))
def test_no_sequence_of_grants_and_revocations_lets_a_revoked_scope_through(ops, action) -> None:
    """Model: each grantor's record holds a set of scopes; a revocation strips scopes from every head."""
    records: list[ConsentRecord] = []
    heads: dict[str, ConsentRecord] = {}
    expected: dict[str, set[str]] = {"self": set(), "kil": set()}
    for i, (op, scopes, who) in enumerate(ops):
        at = T0 + timedelta(minutes=i)
        gtype, gid = ("self", "b-1") if who == "self" else ("community_authority", "kil")
        if op == "grant":
            prev = heads.get(who)
            r = rec(
                f"c{i}",
                grantor_type=gtype,
                grantor_id=gid,
                scopes=tuple(sorted(scopes)),
                recorded_at=at,
                valid_from=at,
                supersedes_id=prev.consent_id if prev else None,
            )
            heads[who] = r
            records.append(r)
            expected[who] = set(scopes)
        else:
            for w, head in list(heads.items()):
                if head.status == "active" and set(head.scopes) & scopes:
                    left = tuple(s for s in head.scopes if s not in scopes)
                    r = replace(
                        head,
                        consent_id=f"c{i}{w}",
                        supersedes_id=head.consent_id,
                        scopes=left,
                        status="active" if left else "revoked",
                        recorded_at=at,
                    )
                    heads[w] = r
                    records.append(r)
                expected[w] -= scopes
    now = T0 + timedelta(minutes=len(ops))
    d = decide(action, Subject(LIVING, tuple(records)), ctx(now, **EXHIBIT))
    assert d.allowed == (_ACTION_SCOPES[action] <= expected["self"])
