"""The ``heirloom`` command as archivists' scripts call it: exit codes, one JSON document, kill -9 safety."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.audio_factory import make_collection, write_audio

pytestmark = pytest.mark.slow
HEIRLOOM = str(Path(sys.executable).parent / "heirloom")


def cli(*args: str, archive: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HEIRLOOM_ARCHIVE": str(archive)}
    proc = subprocess.run([HEIRLOOM, *args], capture_output=True, text=True, env=env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"heirloom {' '.join(args)} exited {proc.returncode}: {proc.stderr[-3000:]}")
    return proc


def test_ingest_json_and_exit_codes(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    expected = make_collection(tmp_path / "in", good=3)
    assert json.loads(cli("init", "--json", archive=archive).stdout)["created"]
    assert json.loads(cli("bearers", "add", "b-01", "--dialect", "en-029", "--json", archive=archive).stdout)["added"]
    out = cli("ingest", str(tmp_path / "in"), "--collection", "c1", "--json", archive=archive)
    summary = json.loads(out.stdout)  # the whole of stdout is one JSON document
    assert {f["file"]: f["outcome"] for f in summary["files"]} == expected
    rows = json.loads(cli("catalog", "query", "select count(*) n from recordings", "--json", archive=archive).stdout)
    assert rows == [{"n": 3}]
    table = cli("catalog", "query", "select bearer_id, format from recordings order by format", archive=archive).stdout
    assert "b-01" in table and "flac" in table
    assert json.loads(cli("fixity", "--json", archive=archive).stdout)["ok"] == 3


def test_cli_failures_are_clear_and_non_zero(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    bad = cli("ingest", "gs://nowhere/x", "--collection", "c1", archive=archive, check=False)
    assert bad.returncode != 0 and "unsupported scheme" in bad.stderr
    bad = cli("ingest", str(tmp_path), "--collection", "no spaces allowed", archive=archive, check=False)
    assert bad.returncode != 0 and "collection name" in bad.stderr
    bad = cli("catalog", "query", "select * from nope", archive=archive, check=False)
    assert bad.returncode != 0 and "query failed" in bad.stderr
    bad = cli("bearers", "add", "b 1", archive=archive, check=False)
    assert bad.returncode != 0 and "not a valid id" in bad.stderr
    bad = cli("align", "--backend", "hmm", archive=archive, check=False)
    assert bad.returncode != 0 and "'hmm' is not one of gmm, mfa" in bad.stderr


def test_fixity_exits_non_zero_on_damage(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    make_collection(tmp_path / "in", good=2, broken=False)
    cli("bearers", "add", "b-01", archive=archive)
    cli("ingest", str(tmp_path / "in"), "--collection", "c1", archive=archive)
    victim = next((archive / "originals").rglob("*.wav"))
    victim.write_bytes(b"flipped")
    proc = cli("fixity", "--json", archive=archive, check=False)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert [p["status"] for p in report["problems"]] == ["mismatch"]


def test_kill_minus_9_then_rerun_ingests_each_file_once(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    src = tmp_path / "in"
    n = 40
    for i in range(n):
        write_audio(src / f"t{i:02d}.wav", seed=i, sr_hz=48000, duration_s=4.0, channels=2)
    (src / "manifest.csv").write_text("file,bearer_id\n" + "".join(f"t{i:02d}.wav,b-01\n" for i in range(n)))
    cli("bearers", "add", "b-01", archive=archive)

    env = {**os.environ, "HEIRLOOM_ARCHIVE": str(archive)}
    proc = subprocess.Popen(
        [HEIRLOOM, "ingest", str(src), "--collection", "c1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list((archive / "originals").rglob("*.wav"))) >= 5:
            break
        time.sleep(0.05)
    killed_mid_way = proc.poll() is None
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert killed_mid_way, "ingest finished before it could be killed; make the collection bigger"

    summary = json.loads(cli("ingest", str(src), "--collection", "c1", "--json", archive=archive).stdout)
    assert {f["outcome"] for f in summary["files"]} <= {"ingested", "duplicate"}
    rows = json.loads(
        cli(
            "catalog",
            "query",
            "select recording_id, original_uri, source_uri from recordings",
            "--json",
            archive=archive,
        ).stdout
    )
    assert len(rows) == n and len({r["recording_id"] for r in rows}) == n
    assert {Path(r["source_uri"]).name for r in rows} == {f"t{i:02d}.wav" for i in range(n)}
    for r in rows:  # no orphan rows: each names an intact original
        assert hashlib.sha256(Path(r["original_uri"]).read_bytes()).hexdigest() == r["recording_id"]
    stored = {p.name.split(".")[0] for p in (archive / "originals").rglob("*") if p.is_file()}
    assert stored == {r["recording_id"] for r in rows}  # no half-copied or unregistered originals
    assert not list((archive / ".tmp").glob("*")), "temp files of the killed run were not cleaned"
    assert json.loads(cli("fixity", "--json", archive=archive).stdout)["untracked_originals"] == []


def test_demo_builds_and_ingests(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    result = json.loads(cli("demo", "--json", archive=archive).stdout)
    files = {f["file"]: f for f in result["ingest"]["files"]}
    assert result["ingest"]["counts"]["ingested"] == 10
    assert {
        files[f]["outcome"]
        for f in (
            "broken/empty.wav",
            "broken/truncated.wav",
            "broken/not-audio.wav",
            "stray-take.wav",
            "unknown-bearer.wav",
            "missing-take.flac",
        )
    } == {"quarantined"}
    assert result["fixity"]["ok"] == 10
    formats = json.loads(
        cli("catalog", "query", "select distinct format from recordings", "--json", archive=archive).stdout
    )
    assert {r["format"] for r in formats} == {"wav", "flac", "mp3", "ogg", "m4a", "opus"}
    aligned = {r["recording_id"]: r for r in result["align"]["recordings"]}
    assert len(aligned) >= 6 and sum(r["segments"] for r in aligned.values()) >= 6
    assert all(Path(r["textgrid"]).read_text().count('name = "words"') == 1 for r in aligned.values() if r["segments"])
    assert {s["reason"].split(" (")[0] for s in result["align"]["skipped"]} <= {"working copy failed its gate"}
    segments = json.loads(
        cli("catalog", "query", "select text, lexicon_version from segments", "--json", archive=archive).stdout
    )
    assert segments and all(s["lexicon_version"].endswith("/v1") and s["text"] for s in segments)
    voice = result["voice"]  # a kokoro version for the one bearer whose consent covers training
    assert [(m["model_id"], m["status"]) for m in voice["models"]] == [("b-ayrshire-v1", "candidate")]
    assert set(voice["skipped"]) == {"b-brooklyn", "b-cardiff", "b-kansas", "b-kingston"}
    line = voice["exhibit_line"]
    assert line["wer"] <= 0.1, line  # Whisper reads the new voice's exhibit line back
    assert (archive / "demo" / "exhibit-line.wav").stat().st_size > 24000
    shown = json.loads(cli("models", "show", "b-ayrshire-v1", "--json", archive=archive).stdout)
    assert shown["base_model"] == "kokoro-v1.0" and shown["metrics"]["baseline"]["held_out"] >= 1
    assert shown["backend"] == "kokoro" and shown["metrics"]["asr"] == "whisper-tiny.en"
    assert Path(shown["model_card_uri"]).read_text().startswith("# Voice model b-ayrshire-v1")
    assert result["audit"]["ok"]


def test_consent_revoke_audit_erase_commands(tmp_path: Path) -> None:
    from catalog.tables import Catalog
    from tests.consent_factory import add_clip, add_exhibit, add_model, add_recording

    archive = tmp_path / "archive"
    cli("bearers", "add", "b-01", "--community", "kil", "--name", "A. Singer", archive=archive)
    scopes = [
        a for s in ("preserve", "model_training", "voice_synthesis", "exhibit_generation") for a in ("--scope", s)
    ]
    granted = json.loads(
        cli("consent", "grant", "b-01", *scopes, "--credit-line", "Sung by A.", "--json", archive=archive).stdout
    )
    bad = cli("consent", "grant", "b-01", "--scope", "everything", archive=archive, check=False)
    assert bad.returncode != 0 and "unknown scope" in bad.stderr

    cat = Catalog.open(str(archive))
    rid = add_recording(cat, cat.storage, "b-01")
    model = add_model(cat, cat.storage, "b-01", granted["consent_id"], [rid])
    add_exhibit(cat)
    clip = add_clip(cat, cat.storage, model.model_id)
    cli("fixity", archive=archive)

    shown = json.loads(cli("consent", "show", "b-01", "--json", archive=archive).stdout)
    assert shown["decisions"]["train_model"]["allowed"] and not shown["decisions"]["export"]["allowed"]
    html = tmp_path / "audit.html"
    doc = json.loads(cli("audit", "--json", "--html", str(html), archive=archive).stdout)
    assert doc["ok"] and "<table>" in html.read_text()

    report = json.loads(
        cli(
            "consent",
            "revoke",
            "b-01",
            "--scope",
            "model_training",
            "--reason",
            "family request",
            "--json",
            archive=archive,
        ).stdout
    )
    assert report["models_removed"] == [model.model_id] and report["clips_removed"] == [clip.clip_id]
    history = json.loads(cli("consent", "history", "b-01", "--json", archive=archive).stdout)
    assert history["chain_intact"] and len(history["records"]) == 2
    assert json.loads(cli("audit", "--json", archive=archive).stdout)["ok"]

    erased = json.loads(cli("erase", "b-01", "--reason", "request 17", "--json", archive=archive).stdout)
    assert erased["people_data_deleted"] and not (archive / "people" / "b-01.json").exists()
    missing = cli("consent", "show", "b-99", archive=archive, check=False)
    assert missing.returncode != 0 and "bearers add b-99" in missing.stderr
