"""``heirloom provenance FILE [--json]`` and ``heirloom provenance keygen DIR``: where a clip came from, and the
site's signing identity."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli._common import ArchiveOpt, JsonOpt, print_json, reports_errors
from heirloom.errors import HeirloomError, ProvenanceError


@reports_errors
def provenance(
    target: Annotated[list[str], typer.Argument(help="FILE to trace, or: keygen DIR.")],
    key_file: Annotated[
        Path | None, typer.Option("--key-file", help="Watermark key (default: $HEIRLOOM_WATERMARK_KEY_FILE).")
    ] = None,
    identity_dir: Annotated[
        Path | None, typer.Option("--identity", help="Signing identity folder (default: $HEIRLOOM_PROVENANCE_DIR).")
    ] = None,
    organization: Annotated[str, typer.Option(help="With keygen: the organisation the certificates name.")] = (
        "heirloom site"
    ),
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Trace FILE: its Content Credentials (validated against the site's root), else its watermark, then the
    clip, exhibit, model, bearer, consent and approvals. `provenance keygen DIR` makes a site root and a
    signing certificate for testing and small sites. Exit 2 when FILE names no clip of this archive."""
    from catalog.tables import Catalog
    from heirloom.settings import archive_uri
    from tasks.provenance import keygen, load_identity, trace_file
    from tasks.watermark import load_key

    if target[0] == "keygen":
        if len(target) != 2:
            raise ProvenanceError("usage: heirloom provenance keygen DIR")
        identity = keygen(Path(target[1]), organization=organization)
        doc = {
            "folder": identity.folder,
            "root": f"{identity.folder}/root.pem",
            "signer": f"{identity.folder}/signer.pem",
        }
        if json_out:
            print_json(doc)
        else:
            typer.echo(f"signing identity written to {identity.folder}; set HEIRLOOM_PROVENANCE_DIR={identity.folder}")
            typer.echo("keep signer.key and root.key secret; give root.pem to whoever validates your clips")
        return
    if len(target) != 1:
        raise ProvenanceError("give one FILE to trace (or: keygen DIR)")
    path = Path(target[0])
    if not path.is_file():
        raise ProvenanceError(f"{path} is not a file")
    try:
        key = load_key(key_file)
    except HeirloomError:
        key = None
    try:
        identity = load_identity(identity_dir)
    except HeirloomError:
        identity = None
    catalog = Catalog.open(archive_uri(archive))
    doc = trace_file(path, catalog, catalog.storage, key=key, identity=identity)
    doc["watermark_key_configured"] = key is not None
    doc["trust_root_configured"] = identity is not None
    if json_out:
        print_json(doc)
    else:
        creds = doc["credentials"]
        typer.echo(f"{path}: {doc['verdict']}")
        typer.echo(f"  Content Credentials: {creds['state'] if creds else 'none in the file'}")
        mark = doc["watermark"]
        typer.echo(f"  watermark: {mark['payload'] if mark and mark['found'] else 'none found' if mark else 'no key'}")
        if doc["clip"]:
            c = doc["clip"]
            typer.echo(
                f"  clip {c['clip_id']}  exhibit {c['exhibit_id']}  model {c['model_id']}  bearer {doc['bearer_id']}"
            )
            typer.echo(f"  consent {', '.join(x['consent_id'] for x in doc['consents'])}")
            typer.echo(f"  approved by {', '.join(a['by'] + ' (' + a['role'] + ')' for a in doc['approvals'])}")
            typer.echo(f"  stored manifest: {doc['stored_manifest'].get('state', 'absent')}")
    if doc["clip"] is None:
        raise typer.Exit(2)
