"""The voice-model registry: version numbers under concurrent registration, the promotion gate, retirement,
and the curators' commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from catalog.manifests import VoiceModelVersion
from catalog.storage import open_storage
from catalog.tables import Catalog
from heirloom.errors import CatalogError
from tests.consent_factory import add_bearer
from voice_models.registry import promote, register, retire, versions

GOOD = {
    "similarity_to_bearer": 0.86,
    "similarity_to_others": 0.62,
    "speaker_id_first": 9,
    "speaker_id_clips": 10,
    "wer": 0.04,
    "dnsmos_ovrl": 3.4,
}


def candidate(bearer: str, metrics: dict | None = None) -> VoiceModelVersion:
    return VoiceModelVersion(
        model_id="x",
        bearer_id=bearer,
        version=0,
        backend="vits",
        dataset_manifest_sha256="d" * 64,
        consent_id="c-1",
        artifact_uri=f"models/{bearer}/generator.pt",
        artifact_sha256="a" * 64,
        metrics=json.dumps(metrics or GOOD),
    )


@pytest.fixture()
def cat(tmp_path: Path) -> Catalog:
    c = Catalog(open_storage(str(tmp_path / "archive")))
    add_bearer(c, "b-01")
    return c


def test_concurrent_registrations_get_distinct_consecutive_versions(cat: Catalog) -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        made = list(pool.map(lambda _: register(cat, candidate("b-01")), range(3)))
    assert sorted(m.version for m in made) == [1, 2, 3]
    assert [m.model_id for m in versions(cat, "b-01")] == ["b-01-v1", "b-01-v2", "b-01-v3"]


def test_promotion_gate_and_retirement(cat: Catalog) -> None:
    first = register(cat, candidate("b-01"))
    weak = register(cat, candidate("b-01", {**GOOD, "wer": 0.8, "similarity_to_others": 0.85, "speaker_id_first": 6}))
    with pytest.raises(CatalogError, match="word error rate 0.8") as refused:
        promote(cat, weak.model_id)
    assert "within 0.15 of the bearer's" in str(refused.value)
    assert "ranks the bearer first for 6 of 10 clips" in str(refused.value)
    alone = register(cat, candidate("b-01", {**GOOD, "speaker_id_first": None, "speaker_id_clips": None}))
    assert promote(cat, alone.model_id).status == "active"  # no other bearers: the second judge has no say
    assert promote(cat, first.model_id).status == "active"
    second = register(cat, candidate("b-01"))
    promote(cat, second.model_id)
    status = {m.model_id: m.status for m in versions(cat, "b-01")}
    assert status == {
        first.model_id: "retired",
        weak.model_id: "candidate",
        alone.model_id: "retired",
        second.model_id: "active",
    }
    with pytest.raises(CatalogError, match="only a candidate"):
        promote(cat, first.model_id)
    assert retire(cat, second.model_id).status == "retired"
    with pytest.raises(CatalogError, match="no model"):
        retire(cat, "b-01-v9")


@pytest.mark.slow
def test_models_commands(cat: Catalog, tmp_path: Path) -> None:
    made = register(cat, candidate("b-01"))
    env = {**os.environ, "HEIRLOOM_ARCHIVE": str(tmp_path / "archive")}
    heirloom = str(Path(sys.executable).parent / "heirloom")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([heirloom, "models", *args], capture_output=True, text=True, env=env, timeout=120)

    listed = json.loads(run("list", "--json").stdout)
    assert [m["model_id"] for m in listed] == [made.model_id] and listed[0]["metrics"]["wer"] == 0.04
    assert json.loads(run("promote", made.model_id, "--json").stdout)["status"] == "active"
    assert json.loads(run("show", made.model_id, "--json").stdout)["status"] == "active"
    missing = run("retire", "b-01-v7")
    assert missing.returncode == 1 and "heirloom models list" in missing.stderr
