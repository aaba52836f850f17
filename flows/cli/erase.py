"""``heirloom erase BEARER --reason ...``: erase a person's personal and derived data."""

from __future__ import annotations

from typing import Annotated

import typer

from flows.cli._common import ArchiveOpt, JsonOpt, print_json, quiet_prefect, reports_errors


@reports_errors
def erase(
    bearer_id: Annotated[str, typer.Argument(help="The bearer to erase.")],
    reason: Annotated[str, typer.Option(help="Why (the request's reference, not the person's name).")],
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Withdraw every scope but preservation, delete derived data, people/ and consent evidence."""
    quiet_prefect()
    from flows.consent import erase_person

    report = erase_person(bearer_id=bearer_id, reason=reason, archive=archive)
    if json_out:
        print_json(report)
        return
    typer.echo(
        f"{bearer_id} erased: {len(report['models_removed'])} model(s), {len(report['clips_removed'])} clip(s), "
        f"{len(report['objects_deleted'])} object(s), {len(report['people_data_deleted'])} personal file(s); "
        f"tables purged: {', '.join(report['tables_purged']) or 'none'}"
    )
