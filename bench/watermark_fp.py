"""False positives of the watermark on unmarked audio, each trial under a fresh key.

    python bench/watermark_fp.py [--trials 10000] [--seed 1] [--marked 0]

Each trial draws a new site key, a kind of unmarked audio (speech of espeak-ng's and festival's voices and
the human speech alsa-utils ships, song-like melodies, music, noise, near silence), a length from the
watermark's minimum (3.32 s) to 12 s, and an attack (none, codecs, resampling, noise, low-pass, gain, speed,
tempo, the phone in a hall, their chain). It prints how many trials detection called marked, and the highest
scores of candidates whose CRC held (a false positive is one at or over ``detection.MIN_SCORE``), so the
margin of the decision rule is a figure, not a hope. ``--marked N`` also embeds N clips under fresh keys and
prints the scores their right payloads reach under the hall chain, the hardest attack, for the other side of
that margin.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._synth import SR, alsa_speech  # noqa: E402
from tasks.watermark import MIN_SECONDS, WatermarkKey, embed  # noqa: E402
from tasks.watermark.detection import MIN_SCORE, candidates, decide  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_watermark", ROOT / "bench" / "watermark.py")
wm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(wm)  # type: ignore[union-attr]

ATTACKS = [
    "none", "mp3_64", "aac_96", "opus_32", "resample_16k", "white_20dB", "pink_20dB", "lowpass_4k", "gain_0.5",
    "speed_+3%", "speed_-3%", "tempo_+3%", "tempo_-3%", "hall_phone", "hall_phone_speed_pink_aac64",
]  # fmt: skip
KINDS = ["speech", "human", "song", "music", "noise", "silence"]


def song(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """A sung-like line: held vowel-like notes (harmonics under a formant envelope) with vibrato and glides."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    y = np.zeros(n)
    i = 0
    while i < n:
        m = min(n - i, int(rng.uniform(0.25, 0.9) * SR))
        f0 = 110 * 2 ** (rng.integers(0, 24) / 12)
        tt = t[:m]
        phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.01 * np.sin(2 * np.pi * 5.5 * tt))) / SR
        formant = rng.uniform(500, 900)
        note = sum(np.exp(-(((k * f0) - formant) ** 2) / (2 * 400**2)) * np.sin(k * phase) for k in range(1, 25))
        y[i : i + m] += note * np.hanning(m) ** 0.3
        i += m
    return (y / np.max(np.abs(y)) * rng.uniform(0.2, 0.6)).astype(np.float32)


def trial_audio(kind: str, rng: np.random.Generator, speech, human, seconds: float) -> np.ndarray:
    n = int(seconds * SR)
    if kind in ("speech", "human"):
        pool = speech if kind == "speech" else human
        src = pool[rng.integers(len(pool))]
        a = rng.integers(0, max(1, len(src) - n))
        return np.resize(src[a : a + n], n).astype(np.float32) * rng.uniform(0.2, 1.0)
    if kind == "song":
        return song(rng, seconds)
    return wm.unmarked_trial(kind, rng, speech, seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--marked", type=int, default=0, help="marked clips under the hall chain, for the margin")
    args = ap.parse_args()
    if args.trials < 0 or args.marked < 0:
        ap.error("--trials and --marked must not be negative")
    rng = np.random.default_rng(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="heirloom-fp-"))
    speech = wm.voices(tmp, 60.0)
    human = [h for h in (np.asarray(x, dtype=np.float32) for x in alsa_speech()) if len(h) > MIN_SECONDS * SR] or speech
    crc_scores: list[tuple[float, str]] = []
    false: list[str] = []
    start = time.perf_counter()
    for i in range(args.trials):
        key = WatermarkKey(rng.bytes(32))
        kind, attack = KINDS[i % len(KINDS)], ATTACKS[int(rng.integers(len(ATTACKS)))]
        seconds = float(rng.uniform(MIN_SECONDS + 0.05, 12.0))
        x = trial_audio(kind, rng, speech, human, seconds)
        heard = wm.ATTACKS[attack](x, np.random.default_rng(int(rng.integers(1 << 31))), tmp)
        if len(heard) < MIN_SECONDS * SR:
            heard = np.resize(heard, int(MIN_SECONDS * SR) + 16)
        found = candidates(heard, SR, key)
        what = f"{kind}/{attack}/{seconds:.1f}s"
        crc_scores += [(c.score, what) for c in found if c.crc_ok]
        if decide(found).found:
            false.append(what)
        if (i + 1) % 1000 == 0:
            print(f"  {i + 1} trials, {len(false)} false positives, {time.perf_counter() - start:.0f} s", flush=True)
    print(f"false positives: {len(false)} of {args.trials} unmarked trials, each under a fresh key {false[:10]}")
    crc_scores.sort(reverse=True)
    print(f"candidates whose CRC held by chance: {len(crc_scores)}; decision threshold MIN_SCORE = {MIN_SCORE}")
    for score, what in crc_scores[:10]:
        print(f"  score {score:.2f}  {what}")
    if args.marked:
        scores = []
        for _ in range(args.marked):
            key, payload = WatermarkKey(rng.bytes(32)), rng.bytes(4)
            src = speech[rng.integers(len(speech))]
            a = rng.integers(0, len(src) - 10 * SR)
            marked = embed(src[a : a + 10 * SR], SR, payload, key).astype(np.float32)
            heard = wm.ATTACKS["hall_phone_speed_pink_aac64"](
                marked, np.random.default_rng(int(rng.integers(1 << 31))), tmp
            )
            right = [c.score for c in candidates(heard, SR, key) if c.crc_ok and c.payload == payload]
            scores.append(max(right) if right else float("nan"))
        s = np.array(scores)
        ok = s[np.isfinite(s)]
        print(f"marked 10 s clips, hall chain: right payload found in {len(ok)} of {len(s)}")
        if len(ok):
            print("  its score: " + ", ".join(f"p{q} {np.percentile(ok, q):.2f}" for q in (1, 5, 10, 50)))


if __name__ == "__main__":
    main()
