"""Generating exhibit clips (tasks.generation) with a real voice (espeak-ng stands in for the bearer's model),
the real watermark, real C2PA signing, and tracing a stripped re-encode back to its clip."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from catalog.storage import open_storage
from catalog.tables import Catalog
from tasks.consent import carry_out, grant, revoke_scopes
from tasks.demo_collection import DemoVoice, synthesize
from tasks.exhibits import add_exhibit, approve, rows_of, submit
from tasks.generation import Voice, check_clip, generate_text, queued, split_text
from tasks.provenance import keygen, load_identity, read_credentials, site_signer, trace_file
from tasks.watermark import WatermarkKey, detect
from tests.consent_factory import add_bearer, add_model

SCOPES = ["voice_synthesis", "exhibit_generation", "model_training"]
LINE = "The water is wide, I cannot get over. And neither have I wings to fly."


def espeak_voice(text: str, seed: int) -> tuple[np.ndarray, int]:
    with tempfile.TemporaryDirectory() as tmp:
        return synthesize(DemoVoice("b-1", "espeak-ng", "en-gb-scotland", "en-gb-scotland"), text, Path(tmp) / "x.wav")


def dropping_voice(text: str, seed: int) -> tuple[np.ndarray, int]:
    """Says only the first two words of every piece: the fault the clip check exists for."""
    return espeak_voice(" ".join(text.split()[:2]), seed)


@pytest.fixture
def site(tmp_path):
    store = open_storage(str(tmp_path / "archive"))
    cat = Catalog(store)
    cat.init()
    add_bearer(cat, "b-1")
    grant(
        cat, store, bearer_id="b-1", grantor_type="self", grantor_id="b-1", scopes=SCOPES, audiences=["public"],
        credit_line="Voice of b-1, Kilbride tradition", disclosure_text="A synthetic voice, made with consent.",
    )  # fmt: skip
    exhibit, _ = add_exhibit(cat, "kiosk-1", venue="Hall", audience="public", purpose="education", loudness_lufs=-18)
    key = WatermarkKey(secret=bytes(range(32)))
    identity = keygen(tmp_path / "identity")
    return cat, store, exhibit, key, identity


def _queue(cat, exhibit, texts, fmt):
    rows = submit(cat, exhibit, "b-1", texts, fmt)
    approve(cat, rows[0].request_id, by="cur-1")
    return queued(cat, request_id=rows[0].request_id)


def test_split_text_keeps_sentences_and_breaks_long_ones_at_clauses() -> None:
    assert [p for p, _ in split_text(LINE)] == [
        "The water is wide, I cannot get over.",
        "And neither have I wings to fly.",
    ]
    long = "one two, " * 40 + "end."
    pieces = split_text(long, max_chars=50)
    assert len(pieces) > 1 and all(len(p) <= 50 for p, _ in pieces) and pieces[-1][1] == 0.0


def test_an_approved_text_becomes_a_marked_signed_clip_found_again_from_a_stripped_mp3(site, tmp_path) -> None:
    cat, store, exhibit, key, identity = site
    (row,) = _queue(cat, exhibit, [LINE], "flac")
    voice = Voice(model_id="m-b-1-v1", bearer_id="b-1", synthesize=espeak_voice)
    done = generate_text(cat, store, row, voice=voice, key=key, sign=site_signer(Path(identity.folder)))
    assert done.state == "ready" and done.clip_id
    (clip,) = cat.read("clips").to_pylist()
    assert clip["clip_id"] == done.clip_id and clip["watermark_payload"] == done.clip_id.removeprefix("clip-")
    assert clip["credit_line"] == "Voice of b-1, Kilbride tradition" and clip["consent_ids"]
    data = store.read_bytes(store.key_of(clip["uri"]))
    creds = read_credentials(data, "flac", root_pem=identity.root_pem)
    assert creds is not None and creds.state == "Trusted"
    assert creds.watermark_payload == clip["watermark_payload"] and creds.clip["clip_id"] == clip["clip_id"]
    assert [a["by"] for a in creds.approvals] == ["cur-1"] and creds.consent_ids == list(clip["consent_ids"])
    assert creds.digital_source_type.endswith("trainedAlgorithmicMedia")
    stranger = keygen(tmp_path / "other")
    assert read_credentials(data, "flac", root_pem=stranger.root_pem).state == "Valid"  # signed, not by them

    local = tmp_path / "clip.flac"
    local.write_bytes(data)
    audio, rate = sf.read(str(local), dtype="float32")
    assert detect(audio, rate, key).payload.hex() == clip["watermark_payload"]
    mp3 = tmp_path / "found.mp3"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(local), "-map_metadata", "-1", "-b:a", "64k", str(mp3)], check=True
    )
    doc = trace_file(mp3, cat, store, key=key, identity=load_identity(Path(identity.folder)))
    assert doc["credentials"] is None  # the re-encode stripped them
    assert doc["clip"]["clip_id"] == clip["clip_id"] and doc["bearer_id"] == "b-1"
    assert doc["stored_manifest"]["state"] == "Trusted"
    assert [a["by"] for a in doc["approvals"]] == ["cur-1"]

    again = submit(cat, exhibit, "b-1", [LINE], "wav")  # another format: another clip, the same text
    assert again[0].state == "awaiting_approval"


def test_opus_gets_a_sidecar_manifest_kept_in_the_archive(site) -> None:
    cat, store, exhibit, key, identity = site
    (row,) = _queue(cat, exhibit, [LINE], "opus")
    voice = Voice(model_id="m-b-1-v1", bearer_id="b-1", synthesize=espeak_voice)
    done = generate_text(cat, store, row, voice=voice, key=key, sign=site_signer(Path(identity.folder)))
    (clip,) = [c for c in cat.read("clips").to_pylist() if c["clip_id"] == done.clip_id]
    assert clip["manifest_uri"].endswith(".c2pa")
    data, manifest = store.read_bytes(store.key_of(clip["uri"])), store.read_bytes(store.key_of(clip["manifest_uri"]))
    assert read_credentials(data, "opus", root_pem=identity.root_pem) is None
    assert read_credentials(data, "opus", manifest=manifest, root_pem=identity.root_pem).state == "Trusted"


def test_a_voice_that_drops_words_fails_the_check_and_is_kept_for_listening(site) -> None:
    cat, store, exhibit, key, identity = site
    (row,) = _queue(cat, exhibit, [LINE], "wav")
    voice = Voice(model_id="m-b-1-v1", bearer_id="b-1", synthesize=dropping_voice)
    done = generate_text(cat, store, row, voice=voice, key=key)
    assert done.state == "failed" and "words are missing" in done.reason
    assert not cat.read("clips").to_pylist()
    assert list(store.list(f"exhibits/{exhibit.exhibit_id}/failed/"))


def test_the_check_uses_an_asr_where_there_is_one() -> None:
    audio, rate = espeak_voice(LINE, 0)
    good = check_clip(audio, rate, LINE, transcribe=lambda a, r, v: LINE, model_wer=0.05)
    assert good.passed and good.figures["wer"] == 0.0
    unjudged = check_clip(audio, rate, LINE, transcribe=lambda a, r, v: "the water is wide")
    assert unjudged.passed and unjudged.figures["wer"] > 0.5 and unjudged.figures["wer_limit"] is None
    bad = check_clip(audio, rate, LINE, transcribe=lambda a, r, v: "the water is wide", model_wer=0.1)
    assert not bad.passed and any("word error rate" in p for p in bad.problems)


def test_the_same_text_model_and_settings_give_the_cached_clip(site) -> None:
    cat, store, exhibit, key, _ = site
    voice = Voice(model_id="m-b-1-v1", bearer_id="b-1", synthesize=espeak_voice)
    (row,) = _queue(cat, exhibit, [LINE], "wav")
    first = generate_text(cat, store, row, voice=voice, key=key)
    # a re-run over the same text (a run that died after registering, say) finds the clip and makes no other
    again = generate_text(cat, store, rows_of(cat, request_id=row.request_id)[0], voice=voice, key=key)
    assert again.clip_id == first.clip_id and len(cat.read("clips").to_pylist()) == 1


def test_consent_withdrawn_before_generation_fails_the_text(site) -> None:
    cat, store, exhibit, key, _ = site
    (row,) = _queue(cat, exhibit, [LINE], "wav")
    revoke_scopes(cat, bearer_id="b-1", scopes=["exhibit_generation"], reason="changed my mind")
    voice = Voice(model_id="m-b-1-v1", bearer_id="b-1", synthesize=espeak_voice)
    done = generate_text(cat, store, row, voice=voice, key=key)
    assert done.state == "failed" and "consent" in done.reason
    assert not cat.read("clips").to_pylist()
    events = [e for e in cat.read("events").to_pylist() if e["type"] == "generation"]
    assert events[-1]["outcome"] == "failure" and json.loads(events[-1]["detail"])["reason"] == done.reason


def test_consent_withdrawn_during_generation_leaves_no_clip(site) -> None:
    cat, store, exhibit, key, _ = site
    (row,) = _queue(cat, exhibit, [LINE], "wav")

    def revoking_voice(text: str, seed: int) -> tuple[np.ndarray, int]:
        if not [r for r in cat.read("consents").to_pylist() if r["status"] == "revoked"]:
            revoke_scopes(cat, bearer_id="b-1", scopes=["voice_synthesis"], reason="withdrawn mid-generation")
        return espeak_voice(text, seed)

    voice = Voice(model_id="m-b-1-v1", bearer_id="b-1", synthesize=revoking_voice)
    done = generate_text(cat, store, row, voice=voice, key=key)
    assert done.state == "failed" and "during generation" in done.reason
    assert not cat.read("clips").to_pylist()
    assert not [o for o in store.list("exhibits/") if "/failed/" not in o.key]


def test_revocation_withdraws_the_clip_its_manifest_and_the_failed_attempts(site) -> None:
    cat, store, exhibit, key, identity = site
    add_model(cat, store, "b-1", "c-x", [], version=1)  # the registry row of m-b-1-v1, the voice below
    voice = Voice(model_id="m-b-1-v1", bearer_id="b-1", synthesize=espeak_voice)
    (row,) = _queue(cat, exhibit, [LINE], "opus")
    done = generate_text(cat, store, row, voice=voice, key=key, sign=site_signer(Path(identity.folder)))
    (bad,) = _queue(cat, exhibit, ["And neither have I wings to fly, nor a boat to carry me."], "wav")
    generate_text(
        cat, store, bad, voice=Voice(model_id="m-b-1-v1", bearer_id="b-1", synthesize=dropping_voice), key=key
    )
    report = carry_out(cat, store, "b-1", ["exhibit_generation"], "the family asked")
    assert report.clips_removed == (done.clip_id,)
    assert not cat.read("clips").to_pylist()
    assert not list(store.list("exhibits/"))  # the clip, its sidecar manifest and the failed attempt
    states = {r.request_id: r.state for r in rows_of(cat)}
    assert states[row.request_id] == "withdrawn"


def test_a_bearers_active_voice_is_fetched_and_checked_against_the_registry(site) -> None:
    from heirloom.errors import VoiceModelError
    from tests.consent_factory import add_recording
    from voice_models.synthesis import load_voice

    cat, store, _, _, _ = site
    add_recording(cat, store, "b-1", language="en")
    with pytest.raises(VoiceModelError, match="no active voice model"):
        load_voice(cat, store, "b-1")
    cat.update("bearers", "bearer_id = 'b-1'", {"dialect": "'en-gb-scotland'"})
    model = add_model(cat, store, "b-1", "c-x", [], version=1)
    voice = load_voice(cat, store, "b-1")
    assert voice.model_id == model.model_id and voice.transcribe is not None  # Whisper judges English
    assert voice.settings == {"backend": "vits", "dialect": "en-gb-scotland"}
    store.put(store.key_of(model.artifact_uri), b"not the weights that were registered")
    with pytest.raises(VoiceModelError, match="do not match the registry's SHA-256"):
        load_voice(cat, store, "b-1")
