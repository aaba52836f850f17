"""Working copies in the archive: which originals still need one, and making one with its catalog row."""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from catalog.events import make_event
from catalog.manifests import Derivative, Event
from catalog.storage import Storage, staged
from catalog.tables import Catalog
from heirloom.errors import CatalogError
from tasks.fixity import key_of_original_uri
from tasks.prepare.chain import WORK_RATE_HZ, PrepareParams, TimeMap, prepare_file


def working_key(recording_id: str, params_hash: str, suffix: str) -> str:
    return f"working/{recording_id}/{params_hash[:16]}{suffix}"


def pending_recordings(
    catalog: Catalog, params_hash: str, *, collection: str | None = None, recording_id: str | None = None
) -> list[dict[str, Any]]:
    """Recordings (rows) with no working copy for these parameters yet, filtered as asked."""
    rows = catalog.read("recordings").to_pylist()
    if collection is not None:
        rows = [r for r in rows if r["collection"] == collection]
    if recording_id is not None:
        rows = [r for r in rows if r["recording_id"] == recording_id]
        if not rows:
            raise CatalogError(
                f"no recording {recording_id} in the catalog; check the id with `heirloom catalog query`"
            )
    done = {
        r["recording_id"]
        for r in catalog.read("derivatives", columns=["recording_id", "params_hash"]).to_pylist()
        if r["params_hash"] == params_hash
    }
    return [r for r in rows if r["recording_id"] not in done]


def _finite(x: Any) -> Any:
    """JSON has no NaN or infinity; they become null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


def prepare_recording(
    archive: Storage, recording: dict[str, Any], params: PrepareParams, *, flow_run_id: str | None = None
) -> tuple[Derivative, list[Event]]:
    """Make the working copy of one original and return its ``derivatives`` row and event."""
    rid = recording["recording_id"]
    phash = params.params_hash()
    key = key_of_original_uri(recording["original_uri"])
    with staged(archive, key) as original, tempfile.TemporaryDirectory(prefix="heirloom-work-") as tmp:
        out = Path(tmp) / "working.flac"
        result = prepare_file(original, out, params)
        with open(out, "rb") as f:
            archive.put(working_key(rid, phash, ".flac"), f)
    tmap = TimeMap(result.metrics["original"]["rate_hz"])
    segments = [
        {
            **asdict(s),
            "gate_reasons": list(s.gate_reasons),
            "original_start_sample": tmap.to_original_sample(s.start_sample),
            "original_end_sample": tmap.to_original_sample(s.end_sample),
        }
        for s in result.segments
    ]
    doc = _finite(
        {
            "recording_id": rid,
            "params": asdict(params),
            "working_rate_hz": WORK_RATE_HZ,
            "time_map": asdict(tmap),
            "segments": segments,
            # every pause, not only those between the packed segments: align cuts utterances at them
            "speech_regions": [
                [tmap.to_original_s(round(s * WORK_RATE_HZ)), tmap.to_original_s(round(e * WORK_RATE_HZ))]
                for s, e in result.speech_regions
            ],
        }
    )
    archive.put(working_key(rid, phash, ".segments.json"), json.dumps(doc, indent=1).encode())
    metrics = _finite(
        {
            **result.metrics,
            "segments_uri": archive.uri(working_key(rid, phash, ".segments.json")),
            "segments": len(segments),
            "segments_passing": sum(s.gate == "pass" for s in result.segments),
        }
    )
    snr = result.metrics.get("snr_db")
    derivative = Derivative(
        recording_id=rid,
        params_hash=phash,
        uri=archive.uri(working_key(rid, phash, ".flac")),
        sample_rate=WORK_RATE_HZ,
        duration_s=result.duration_s,
        gate=result.gate,  # type: ignore[arg-type]
        gate_reasons=result.gate_reasons,
        software=json.dumps(result.software, sort_keys=True),
        snr_db=snr if snr is not None and math.isfinite(snr) else None,
        clipping_ratio=result.metrics["clipping_ratio"],
        speech_ratio=result.metrics["speech_ratio"],
        loudness_lufs=result.metrics["loudness"]["measured_lufs"] + result.metrics["loudness"]["gain_db"]
        if math.isfinite(result.metrics["loudness"]["measured_lufs"])
        else None,
        metrics=json.dumps(metrics, sort_keys=True),
    )
    event = make_event(
        "normalization",
        [rid],
        "success" if result.gate == "pass" else "warning",
        detail={"params_hash": phash, "gate": result.gate, "reasons": list(result.gate_reasons), "uri": derivative.uri},
        flow_run_id=flow_run_id,
    )
    return derivative, [event]


def commit_derivatives(catalog: Catalog, made: list[tuple[Derivative, list[Event]]]) -> int:
    """Write rows (one per recording and parameters, whatever the re-runs) and their events."""
    inserted = catalog.insert_new("derivatives", [d for d, _ in made], key=("recording_id", "params_hash"))
    catalog.append("events", [e for _, events in made for e in events])
    return inserted
