"""``heirloom exhibit add|list|show|retire|rotate-token|requests|approve|reject``: exhibits and their texts."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer

from catalog.manifests import Exhibit, ExhibitRequest
from catalog.tables import Catalog
from flows.cli._common import ArchiveOpt, JsonOpt, parse_when, print_json, reports_errors
from heirloom.errors import ManifestError
from heirloom.settings import archive_uri
from tasks.exhibits import (
    add_exhibit,
    approve,
    get_exhibit,
    list_exhibits,
    pending,
    preapprove_transcripts,
    reject,
    retire_exhibit,
    rotate_token,
    rows_of,
)

app = typer.Typer(help="Register exhibits, and approve or reject the texts they ask for.", no_args_is_help=True)
TextOpt = Annotated[int | None, typer.Option("--text", help="Only text N of the request (0-based; default: all).")]


def _when(value: str | None, what: str) -> datetime | None:
    return parse_when(value, lambda reason: ManifestError(what, reason))


def _catalog(archive: str | None) -> Catalog:
    catalog = Catalog.open(archive_uri(archive))
    catalog.init()
    return catalog


def exhibit_doc(x: Exhibit) -> dict[str, Any]:
    doc = x.to_dict()
    del doc["kind"], doc["schema_version"], doc["token_sha256"]
    doc["preapprovals"] = json.loads(x.preapprovals)
    return doc


def request_doc(r: ExhibitRequest) -> dict[str, Any]:
    doc = r.to_dict()
    del doc["kind"], doc["schema_version"]
    doc["approvals"] = json.loads(r.approvals)
    return doc


@app.command("add")
@reports_errors
def add(
    exhibit_id: Annotated[str, typer.Argument(help="An id for the exhibit, e.g. hall-3-kiosk.")],
    venue: Annotated[str, typer.Option(help="Where it plays (museum, room).")],
    audience: Annotated[str, typer.Option(help="Who hears it, as consent records name audiences (e.g. public).")],
    purpose: Annotated[str, typer.Option(help="Why, as consent and labels name purposes (e.g. education).")],
    valid_from: Annotated[str | None, typer.Option(help="ISO date/time it opens (default: now).")] = None,
    valid_until: Annotated[str | None, typer.Option(help="ISO date/time it closes (default: open-ended).")] = None,
    bearer: Annotated[list[str] | None, typer.Option(help="A bearer it may ask for (repeatable; default any).")] = None,
    loudness_lufs: Annotated[float, typer.Option(help="Loudness of its clips, LUFS.")] = -16.0,
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Register an exhibit and print its token, once: give it to the exhibit; only its hash is kept."""
    exhibit, token = add_exhibit(
        _catalog(archive),
        exhibit_id,
        venue=venue,
        audience=audience,
        purpose=purpose,
        valid_from=_when(valid_from, "--valid-from"),
        valid_until=_when(valid_until, "--valid-until"),
        bearer_ids=bearer or (),
        loudness_lufs=loudness_lufs,
    )
    if json_out:
        print_json({**exhibit_doc(exhibit), "token": token})
    else:
        typer.echo(f"exhibit {exhibit_id} registered; its token (shown only now):\n{token}")


@app.command("list")
@reports_errors
def list_(archive: ArchiveOpt = None, json_out: JsonOpt = False) -> None:
    """List registered exhibits."""
    exhibits = list_exhibits(_catalog(archive))
    if json_out:
        print_json([exhibit_doc(x) for x in exhibits])
        return
    for x in exhibits:
        until = x.valid_until.date().isoformat() if x.valid_until else "open"
        typer.echo(f"{x.exhibit_id:<20} {x.status:<8} {x.audience:<12} {x.purpose:<12} until {until}  {x.venue}")


@app.command("show")
@reports_errors
def show(exhibit_id: str, archive: ArchiveOpt = None, json_out: JsonOpt = False) -> None:
    """One exhibit and its requests."""
    catalog = _catalog(archive)
    exhibit = get_exhibit(catalog, exhibit_id)
    rows = rows_of(catalog, exhibit_id=exhibit_id)
    if json_out:
        print_json({**exhibit_doc(exhibit), "requests": [request_doc(r) for r in rows]})
        return
    for k, v in exhibit_doc(exhibit).items():
        typer.echo(f"{k:<14} {v}")
    for r in rows:
        typer.echo(f"  {r.request_id} #{r.item} {r.state:<18} {r.bearer_id:<10} {r.text[:60]}")


@app.command("retire")
@reports_errors
def retire(
    exhibit_id: str,
    reason: Annotated[str | None, typer.Option(help="Why, for the record.")] = None,
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Retire an exhibit: its token stops working at once."""
    exhibit = retire_exhibit(_catalog(archive), exhibit_id, reason=reason)
    if json_out:
        print_json(exhibit_doc(exhibit))
    else:
        typer.echo(f"exhibit {exhibit_id} retired; its token no longer works")


@app.command("rotate-token")
@reports_errors
def rotate(exhibit_id: str, archive: ArchiveOpt = None, json_out: JsonOpt = False) -> None:
    """A new token for the exhibit (shown once); the old one stops working at once."""
    exhibit, token = rotate_token(_catalog(archive), exhibit_id)
    if json_out:
        print_json({"exhibit_id": exhibit.exhibit_id, "token": token})
    else:
        typer.echo(f"new token for {exhibit_id} (shown only now; the old one no longer works):\n{token}")


@app.command("preapprove")
@reports_errors
def preapprove_cmd(
    exhibit_id: str,
    bearer: Annotated[str, typer.Option(help="The bearer whose own transcribed words are approved.")],
    by: Annotated[str, typer.Option(help="The curator's id.")],
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Approve in one step every text that is the bearer's own transcribed words (3 or more in a row), for
    this exhibit; a community's review, where asked for, is still needed."""
    exhibit = preapprove_transcripts(_catalog(archive), exhibit_id, bearer, by=by)
    if json_out:
        print_json(exhibit_doc(exhibit))
    else:
        typer.echo(f"texts from {bearer}'s transcripts now arrive approved by {by} for {exhibit_id}")


@app.command("requests")
@reports_errors
def requests_(
    pending_only: Annotated[bool, typer.Option("--pending", help="Only texts awaiting approval.")] = False,
    exhibit: Annotated[str | None, typer.Option(help="Only this exhibit's requests.")] = None,
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Requested texts and their state."""
    catalog = _catalog(archive)
    rows = pending(catalog) if pending_only else rows_of(catalog)
    rows = [r for r in rows if exhibit is None or r.exhibit_id == exhibit]
    if json_out:
        print_json([request_doc(r) for r in rows])
        return
    for r in rows:
        need = f"{len(request_doc(r)['approvals'])}/{r.approvals_needed} approvals"
        typer.echo(f"{r.request_id} #{r.item} {r.exhibit_id:<16} {r.bearer_id:<10} {r.state:<18} {need}  {r.text[:60]}")


@app.command("approve")
@reports_errors
def approve_cmd(
    request_id: str,
    by: Annotated[str, typer.Option(help="The approver's id (it goes into the clip's provenance).")],
    role: Annotated[str, typer.Option(help="curator, or community for a community's reviewer.")] = "curator",
    text: TextOpt = None,
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Approve a request's texts; a text with every approval it needs is queued for generation."""
    rows = approve(_catalog(archive), request_id, by=by, role=role, item=text)  # type: ignore[arg-type]
    if json_out:
        print_json([request_doc(r) for r in rows])
        return
    for r in rows:
        typer.echo(f"{r.request_id} #{r.item}: {r.state}")


@app.command("reject")
@reports_errors
def reject_cmd(
    request_id: str,
    by: Annotated[str, typer.Option(help="The curator's id.")],
    reason: Annotated[str, typer.Option(help="Why, in words the exhibit is shown.")],
    text: TextOpt = None,
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Reject a request's texts with a reason."""
    rows = reject(_catalog(archive), request_id, by=by, reason=reason, item=text)
    if json_out:
        print_json([request_doc(r) for r in rows])
        return
    for r in rows:
        typer.echo(f"{r.request_id} #{r.item}: rejected")


@app.command("retry")
@reports_errors
def retry_cmd(
    request_id: str,
    by: Annotated[str, typer.Option(help="Who asks for the retry.")],
    text: TextOpt = None,
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Queue a request's failed texts again (after fixing what their reason names); `heirloom generate` runs them."""
    from tasks.generation import requeue

    rows = requeue(_catalog(archive), request_id, by=by, item=text)
    if json_out:
        print_json([request_doc(r) for r in rows])
        return
    for r in rows:
        typer.echo(f"{r.request_id} #{r.item}: queued")
