"""A small, realistic demo collection made on the spot, with no downloads.

Stand-in tradition-bearers speak through espeak-ng dialect voices and a festival voice; their recordings get
the damage real field tapes carry (tape hiss, 50 Hz mains hum with harmonics, clipping, long silences, a
digital pre-roll) and arrive in the formats archives receive (24-bit WAV, FLAC, MP3, Ogg Vorbis, Opus,
M4A/AAC). A few deliberately broken files and manifest rows exercise quarantine.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from catalog.manifests import Bearer, ConsentRecord
from catalog.storage import Storage
from catalog.tables import Catalog
from heirloom.errors import HeirloomError
from tasks.consent import consent_records, grant, write_person
from tasks.ingest import ManifestRow, render_manifest


@dataclass(frozen=True, slots=True)
class DemoVoice:
    bearer_id: str
    engine: str  # "espeak-ng" or "festival"
    voice: str
    dialect: str


VOICES = (
    DemoVoice("b-ayrshire", "espeak-ng", "en-gb-scotland", "en-gb-scotland"),
    DemoVoice("b-kingston", "espeak-ng", "en-029", "en-029"),
    DemoVoice("b-brooklyn", "espeak-ng", "en-us-nyc", "en-us-nyc"),
    DemoVoice("b-cardiff", "espeak-ng", "en-gb-x-gbcwmd", "en-gb-x-gbcwmd"),
    DemoVoice("b-kansas", "festival", "voice_kal_diphone", "en-us"),
)

DECEASED = "b-kansas"

# Traditional lyrics and tale openings, long out of copyright.
TEXTS = (
    "The water is wide, I cannot get over, and neither have I wings to fly.",
    "Give me a boat that can carry two, and both shall row, my love and I.",
    "Once upon a time, when the river ran high, an old fisherman lived by the ford.",
    "Oh the summertime is coming and the trees are sweetly blooming.",
    "As I roved out one morning fair, all in the springtime of the year.",
    "My grandmother told this story at the fireside every winter night.",
    "Down by the salley gardens my love and I did meet.",
    "She passed the salley gardens with little snow white feet.",
    "The fox went out on a chilly night and prayed for the moon to give him light.",
    "There was a wee cooper who lived in Fife, and he has gotten a gentle wife.",
)

FORMATS = (
    ("wav", ["-c:a", "pcm_s24le"]),
    ("flac", ["-ar", "44100"]),
    ("mp3", ["-b:a", "128k"]),
    ("ogg", ["-c:a", "libvorbis", "-q:a", "5"]),
    ("m4a", ["-c:a", "aac", "-b:a", "96k"]),
    ("opus", ["-c:a", "libopus", "-b:a", "48k"]),
)


def synthesize(voice: DemoVoice, text: str, out: Path) -> tuple[np.ndarray, int]:
    """Speak ``text`` with the voice's engine; returns mono float32 samples and their rate."""
    if voice.engine == "espeak-ng":
        cmd = ["espeak-ng", "-v", voice.voice, "-s", "150", "-w", str(out), text]
    else:
        cmd = ["text2wave", "-eval", f"({voice.voice})", "-o", str(out)]
    try:
        subprocess.run(
            cmd,
            input=text.encode() if voice.engine == "festival" else None,
            check=True,
            capture_output=True,
            timeout=120,
        )
    except FileNotFoundError as e:
        raise HeirloomError(f"{cmd[0]} is not installed; `bash dev.sh setup` installs espeak-ng and festival") from e
    except subprocess.CalledProcessError as e:
        raise HeirloomError(f"{cmd[0]} failed for voice {voice.voice}: {e.stderr.decode(errors='replace')}") from e
    if not out.exists() or out.stat().st_size == 0:  # text2wave exits 0 and writes nothing when it has no voice
        raise HeirloomError(
            f"{cmd[0]} wrote no audio for voice {voice.voice}; is its voice installed? (`bash dev.sh setup` installs"
            " festival's kal_diphone, festvox-kallpc16k)"
        )
    audio, rate = sf.read(str(out), dtype="float32", always_2d=True)
    return audio.mean(axis=1), rate


def field_damage(audio: np.ndarray, rate: int, rng: np.random.Generator, *, clip: bool) -> np.ndarray:
    """Add what a field tape carries: shaped hiss, 50 Hz hum and harmonics, silences, maybe clipping."""
    pause = lambda s: np.zeros(int(s * rate), dtype=np.float32)  # noqa: E731
    x = np.concatenate([pause(rng.uniform(0.5, 1.5)), audio, pause(rng.uniform(2.0, 4.0)), audio, pause(1.0)])
    t = np.arange(len(x)) / rate
    hum = sum(0.02 / k * np.sin(2 * np.pi * 50 * k * t + rng.uniform(0, 6.28)) for k in (1, 2, 3, 5))
    hiss = np.convolve(rng.normal(0, 0.01, len(x)), [0.5, 0.3, 0.2], mode="same")
    x = x * 0.6 + hum + hiss
    if clip:
        x = np.clip(x * 3.0, -0.7, 0.7)
    pre_roll = np.zeros(int(0.25 * rate), dtype=np.float32)  # digital silence before the tape starts
    return np.concatenate([pre_roll, x]).astype(np.float32)


def encode(audio: np.ndarray, rate: int, args: list[str], out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "in.wav"
        sf.write(str(wav), audio, rate, subtype="FLOAT")
        try:
            subprocess.run(
                ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(wav), *args, str(out)],
                check=True,
                capture_output=True,
                timeout=300,
            )
        except subprocess.CalledProcessError as e:
            raise HeirloomError(f"ffmpeg could not encode {out.name}: {e.stderr.decode(errors='replace')}") from e


def build_demo_collection(target: Storage, prefix: str, *, seed: int = 7) -> list[Bearer]:
    """Write the demo collection (recordings, broken files, manifest.csv) under ``prefix``.

    Returns the bearers to register (the manifest also names one unregistered bearer, on purpose).
    """
    rng = np.random.default_rng(seed)
    rows: list[ManifestRow] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for i, voice in enumerate(VOICES):
            for j in range(2):
                text = TEXTS[(2 * i + j) % len(TEXTS)]
                speech, rate = synthesize(voice, text, work / "tts.wav")
                damaged = field_damage(speech, rate, rng, clip=(i + j) % 4 == 3)
                ext, args = FORMATS[(2 * i + j) % len(FORMATS)]
                name = f"{voice.bearer_id}/take{j + 1}.{ext}"
                encode(damaged, rate, args, work / f"out.{ext}")
                with open(work / f"out.{ext}", "rb") as f:
                    target.put(f"{prefix}/{name}", f)
                rows.append(
                    ManifestRow(
                        line=0,
                        file=name,
                        bearer_id=voice.bearer_id,
                        title=f"Take {j + 1}",
                        transcript=f"{text} {text}",
                        language="en",
                        dialect=voice.dialect,
                        tk_labels=("tk_attribution",),
                        recorded_at=f"{1968 + i}-0{j + 4}-1{i}",
                    )
                )
        good = work / "good.wav"
        sf.write(str(good), rng.normal(0, 0.1, 16000).astype(np.float32), 16000, subtype="PCM_16")
        data = good.read_bytes()
        broken = {
            "broken/empty.wav": b"",
            "broken/truncated.wav": data[: len(data) // 3],
            "broken/not-audio.wav": b"This is a cataloguer's note, saved with the wrong extension.\n",
        }
        for name, payload in broken.items():
            target.put(f"{prefix}/{name}", payload)
            rows.append(ManifestRow(line=0, file=name, bearer_id=VOICES[0].bearer_id, title="damaged transfer"))
        target.put(f"{prefix}/stray-take.wav", data)  # on disk, but no manifest row
        target.put(f"{prefix}/unknown-bearer.wav", data[:8000] + data[8000:])
        rows.append(ManifestRow(line=0, file="unknown-bearer.wav", bearer_id="b-unregistered", title="who sang?"))
        rows.append(ManifestRow(line=0, file="missing-take.flac", bearer_id=VOICES[1].bearer_id, title="lost tape"))
    target.put(f"{prefix}/manifest.csv", render_manifest(rows).encode())
    return [
        Bearer(
            bearer_id=v.bearer_id,
            dialect=v.dialect,
            languages=("en",),
            community_ids=("demo-community",),
            status="deceased" if v.bearer_id == DECEASED else "living",
        )
        for v in VOICES
    ]


def seed_demo_consents(catalog: Catalog, archive: Storage) -> list[ConsentRecord]:
    """Consent as a real collection has it: full, partial, a custodian's grant with evidence, and silence.

    Skipped for bearers who already have records, so re-running the demo adds nothing.
    """
    if any(consent_records(catalog, v.bearer_id) for v in VOICES):
        return []
    for v in VOICES:
        write_person(archive, v.bearer_id, {"name": f"Stand-in voice {v.voice}", "contact": None})
    full = ["preserve", "research", "public_access", "model_training", "voice_synthesis", "exhibit_generation"]
    out = [
        grant(
            catalog,
            archive,
            bearer_id="b-ayrshire",
            grantor_type="self",
            grantor_id="b-ayrshire",
            scopes=full,
            tk_labels=("tk_attribution",),
            credit_line="Sung by the Ayrshire tradition-bearer (demo)",
            method="written",
            consent_language="en",
        ),
        grant(
            catalog,
            archive,
            bearer_id="b-kingston",
            grantor_type="self",
            grantor_id="b-kingston",
            scopes=["preserve", "research"],
            method="oral-recorded",
            consent_language="en",
        ),
        grant(
            catalog,
            archive,
            bearer_id="b-cardiff",
            grantor_type="self",
            grantor_id="b-cardiff",
            scopes=["preserve", "public_access"],
            tk_labels=("tk_non_commercial",),
            method="written",
        ),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        letter = Path(tmp) / "family-consent.txt"
        letter.write_text("We, the family of the Kansas storyteller, agree to preservation and research use.\n")
        out.append(
            grant(
                catalog,
                archive,
                bearer_id=DECEASED,
                grantor_type="family",
                grantor_id="kansas-family",
                scopes=["preserve", "research"],
                evidence=letter,
                custodians=("kansas-family",),
                method="written",
            )
        )
    return out  # b-brooklyn has given no consent: silence means no
