"""The ``audit`` flow: run every check and publish the summary as a Prefect table artifact."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from catalog.events import make_event
from flows._shared import catalog, flow_run_id, storage
from heirloom.errors import HeirloomError
from heirloom.settings import archive_uri
from tasks.consent import run_audit
from tasks.provenance import load_identity
from tasks.watermark import WatermarkKey, load_key


def _site_key_and_root() -> tuple[WatermarkKey | None, bytes | None]:
    """The watermark key and the signing root, where the site configured them (else the audit says what it
    could not check)."""
    try:
        key = load_key(None)
    except HeirloomError:
        key = None
    try:
        root = load_identity().root_pem
    except HeirloomError:
        root = None
    return key, root


def _audit(archive: str, fixity_max_age_days: float, run_id: str | None) -> dict[str, Any]:
    cat = catalog(archive)
    key, root = _site_key_and_root()
    report = run_audit(
        cat, storage(archive), fixity_max_age_days=fixity_max_age_days, watermark_key=key, trust_root_pem=root
    )
    doc = report.to_dict()
    outcome = "success" if doc["ok"] else "warning"
    detail = {
        "findings": len(doc["findings"]),
        "failing": [s["check"] for s in doc["summary"] if s["status"] == "fail"],
    }
    cat.append("events", [make_event("audit", ["catalog"], outcome, detail=detail, flow_run_id=run_id)])
    return doc


audit_task = task(name="run-audit", cache_policy=NO_CACHE)(_audit)


@flow(name="audit", validate_parameters=False)
def audit(archive: str | None = None, fixity_max_age_days: float = 90) -> dict[str, Any]:
    archive = archive_uri(archive)
    doc = audit_task(archive, fixity_max_age_days, flow_run_id())
    create_table_artifact(
        key="heirloom-audit",
        table=doc["summary"],
        description=f"heirloom audit of {archive}: {len(doc['findings'])} finding(s)",
    )
    return {"archive": archive, **doc}
