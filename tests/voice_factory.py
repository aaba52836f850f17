"""An archive ready for voice-model training: bearers with espeak-ng voices, a prepared working copy each (real
32 kHz audio), aligned segments with phones, and consent to train."""

from __future__ import annotations

import io
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from catalog.manifests import Derivative, Segment
from catalog.storage import Storage
from catalog.tables import Catalog
from tasks.align.g2p import g2p, words_of
from tasks.consent.records import grant
from tests.consent_factory import add_bearer, add_recording

RATE = 32000
SENTENCES = (
    "the water is wide I cannot get over",
    "neither have I wings to fly",
    "give me a boat that can carry two",
    "and both shall row my love and I",
    "down by the salley gardens my love and I did meet",
    "she passed the salley gardens with little snow white feet",
)
VOICES = {"b-01": "en-us+m3", "b-02": "en-us+f2", "b-03": "en-gb+m7"}
SCOPES = ["preserve", "model_training", "voice_synthesis"]


def speak(text: str, voice: str) -> np.ndarray:
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(["espeak-ng", "-v", voice, "-w", f.name, text], check=True)
        x, sr = sf.read(f.name, dtype="float32")
    return soxr.resample(x, sr, RATE).astype(np.float32)


def _phones(text: str, start: float, end: float) -> str:
    """Word and phone intervals spread evenly over the utterance (the model learns its own durations)."""
    words = words_of(text)
    prons = g2p(words, "en-us")
    step = (end - start) / len(words)
    body: dict[str, list] = {"words": [], "phones": []}
    for k, w in enumerate(words):
        ws, ph = start + k * step, prons[w][0]
        body["words"].append([w, ws, ws + step])
        body["phones"] += [[p, ws + j * step / len(ph), ws + (j + 1) * step / len(ph)] for j, p in enumerate(ph)]
    return json.dumps(body, ensure_ascii=False)


def add_voice(cat: Catalog, store: Storage, bearer_id: str, voice: str, *, consent: bool = True) -> str:
    """One recording of the bearer singing every sentence, prepared (gate pass) and aligned."""
    add_bearer(cat, bearer_id)
    rid = add_recording(cat, store, bearer_id, language="en")
    gap = np.zeros(int(0.4 * RATE), dtype=np.float32)
    pieces, segments, t = [gap], [], len(gap) / RATE
    for n, text in enumerate(SENTENCES):
        x = speak(text, voice)
        start, end = t, t + len(x) / RATE
        segments.append(Segment(f"seg-{rid[:8]}-{n}", rid, start, end, text, _phones(text, start, end), "en-us"))
        pieces += [x, gap]
        t = end + len(gap) / RATE
    buf = io.BytesIO()
    sf.write(buf, np.concatenate(pieces), RATE, format="FLAC")
    key = f"working/{rid}/test.flac"
    store.put(key, buf.getvalue())
    derivative = Derivative(rid, "b" * 64, store.uri(key), RATE, t, "pass", "test")  # type: ignore[arg-type]
    cat.append("derivatives", [derivative])
    cat.append("segments", segments)
    if consent:
        grant(cat, store, bearer_id=bearer_id, grantor_type="self", grantor_id=bearer_id, scopes=SCOPES)
    return rid


def voice_archive(root: Path | str, bearers: dict[str, str] | None = None) -> tuple[Catalog, Storage]:
    """Local when ``root`` is a path, S3 when it is an ``s3://`` URI."""
    from catalog.storage import open_storage

    store = open_storage(str(root))
    cat = Catalog(store)
    for bearer_id, voice in (bearers or VOICES).items():
        add_voice(cat, store, bearer_id, voice)
    return cat, store
