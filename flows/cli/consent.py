"""``heirloom consent grant|show|history|revoke BEARER``: consent records as curators handle them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from catalog.manifests import utc_now
from catalog.tables import Catalog
from flows.cli._common import ArchiveOpt, JsonOpt, parse_when, print_json, quiet_prefect, reports_errors
from heirloom.errors import ConsentError
from heirloom.settings import archive_uri
from heirloom.vocabulary import SCOPES
from policies.consent import chain_breaks, in_force
from policies.decide import Context, Subject, decide
from policies.protocols import ACTIONS
from tasks.consent import bearer_facts, consent_records, grant

app = typer.Typer(help="Grant, show, trace and revoke consent.", no_args_is_help=True)


def _when(value: str | None, what: str, bearer_id: str) -> datetime | None:
    return parse_when(value, lambda reason: ConsentError(bearer_id, f"{what} {reason}"))


@app.command("grant")
@reports_errors
def grant_cmd(
    bearer_id: Annotated[str, typer.Argument(help="The bearer the consent is about.")],
    scope: Annotated[
        list[str],
        typer.Option(help=f"Scope granted (repeatable): {', '.join(SCOPES)}."),
    ],
    grantor_type: Annotated[
        str, typer.Option(help="self, legal_guardian, family, community_authority or estate.")
    ] = "self",
    grantor_id: Annotated[str | None, typer.Option(help="Who grants (default: the bearer, for self).")] = None,
    evidence: Annotated[Path | None, typer.Option(help="Evidence file (signed form, recorded oral consent).")] = None,
    label: Annotated[list[str] | None, typer.Option(help="TK/BC label that applies (repeatable).")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Recording id never to use (repeatable).")] = None,
    audience: Annotated[list[str] | None, typer.Option(help="Allowed audience (repeatable; none: any).")] = None,
    custodian: Annotated[
        list[str] | None, typer.Option(help="Custodian id (repeatable), for a deceased bearer.")
    ] = None,
    valid_from: Annotated[str | None, typer.Option(help="ISO date/time (default: now).")] = None,
    valid_until: Annotated[str | None, typer.Option(help="ISO date/time (default: open-ended).")] = None,
    method: Annotated[str | None, typer.Option(help="How consent was given (written, oral-recorded...).")] = None,
    language: Annotated[str | None, typer.Option(help="Language consent was given in.")] = None,
    credit_line: Annotated[str | None, typer.Option(help="Credit line to show with any output.")] = None,
    disclosure: Annotated[str | None, typer.Option(help="Disclosure text for synthetic audio.")] = None,
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Record a grant (it supersedes the same grantor's earlier record)."""
    uri = archive_uri(archive)
    cat = Catalog.open(uri)
    record = grant(
        cat,
        cat.storage,
        bearer_id=bearer_id,
        grantor_type=grantor_type,
        grantor_id=grantor_id or bearer_id,
        scopes=scope,
        evidence=evidence,
        valid_from=_when(valid_from, "--valid-from", bearer_id),
        valid_until=_when(valid_until, "--valid-until", bearer_id),
        tk_labels=label or (),
        excluded_recordings=exclude or (),
        audiences=audience or (),
        custodians=custodian or (),
        method=method,
        consent_language=language,
        disclosure_text=disclosure,
        credit_line=credit_line,
    )
    if json_out:
        print_json(record.to_dict())
    else:
        typer.echo(
            f"{record.consent_id}: {bearer_id} grants {', '.join(record.scopes)}"
            f" ({record.grantor_type} {record.grantor_id})"
        )


@app.command("show")
@reports_errors
def show(bearer_id: str, archive: ArchiveOpt = None, json_out: JsonOpt = False) -> None:
    """The records in force now, and what each action would be told (no exhibit context)."""
    cat = Catalog.open(archive_uri(archive))
    facts = bearer_facts(cat, bearer_id)
    records = consent_records(cat, bearer_id)
    now = utc_now()
    current = in_force(records, now)
    decisions = {a: decide(a, Subject(facts, tuple(records)), Context(at=now)) for a in ACTIONS}
    doc = {
        "bearer_id": bearer_id,
        "status": facts.status,
        "in_force": [r.to_dict() for r in current],
        "decisions": {a: {"allowed": d.allowed, "reasons": list(d.reasons)} for a, d in decisions.items()},
    }
    if json_out:
        print_json(doc)
        return
    typer.echo(f"{bearer_id} ({facts.status}): {len(current)} record(s) in force")
    for r in current:
        typer.echo(
            f"  {r.consent_id}  {r.grantor_type}:{r.grantor_id}  {', '.join(r.scopes)}"
            f"  labels={','.join(r.tk_labels) or '-'}"
        )
    for a, d in decisions.items():
        typer.echo(f"  {a:<12} {'allowed' if d.allowed else 'refused'}: {d.reasons[0]}")


@app.command("history")
@reports_errors
def history(bearer_id: str, archive: ArchiveOpt = None, json_out: JsonOpt = False) -> None:
    """Every record of the bearer in order, with the hash chain checked."""
    cat = Catalog.open(archive_uri(archive))
    bearer_facts(cat, bearer_id)
    records = consent_records(cat, bearer_id)
    breaks = chain_breaks([r.to_row() for r in records])
    if json_out:
        print_json(
            {
                "bearer_id": bearer_id,
                "records": [r.to_dict() for r in records],
                "chain_intact": not breaks,
                "chain_breaks": breaks,
            }
        )
        return
    for r in records:
        typer.echo(
            f"{r.recorded_at:%Y-%m-%d %H:%M:%S}  {r.consent_id}  {r.status:<7}  {','.join(r.scopes) or '-':<40}"
            f"  supersedes={r.supersedes_id or '-'}  {r.reason or ''}"
        )
    typer.echo("chain intact" if not breaks else "CHAIN BROKEN:\n  " + "\n  ".join(breaks))


@app.command("revoke")
@reports_errors
def revoke(
    bearer_id: str,
    scope: Annotated[list[str], typer.Option(help="Scope to withdraw (repeatable).")],
    reason: Annotated[str, typer.Option(help="Why (kept in the record and the events).")],
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Withdraw scopes and carry it out: models retired and deleted, clips withdrawn, tables purged."""
    quiet_prefect()
    from flows.consent import revoke as revoke_flow

    report = revoke_flow(bearer_id=bearer_id, scopes=list(scope), reason=reason, archive=archive)
    if json_out:
        print_json(report)
        return
    typer.echo(f"{bearer_id}: revoked {', '.join(report['scopes'])} ({len(report['new_consent_ids'])} new record(s))")
    typer.echo(
        f"  models removed: {len(report['models_removed'])}, clips removed: {len(report['clips_removed'])},"
        f" objects deleted: {len(report['objects_deleted'])}"
    )
