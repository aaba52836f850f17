"""Voice-model benchmark: a base on four voices, a fine-tune for a fifth (the bearer stand-in), both judged on
the stand-in's held-out recordings, which no model saw in training.

Speakers are espeak-ng voices reading sentences drawn from a fixed word list. It prints, for the fine-tuned
model and for the base speaking as its closest voice: speaker similarity (resemblyzer) to the stand-in and to
the other voices, word error rate (pocketsphinx, word-loop grammar), DNSMOS OVRL; and training seconds per
minute of data, synthesis speed (x real time), on the device torch finds (CPU here; CUDA where lent).

    python bench/voice.py                        # tiny preset, CPU-sized run (about 10 minutes on 2 cores)
    python bench/voice.py --quick                # a few steps: checks the path, says nothing of quality
    python bench/voice.py --preset standard --minutes 5 --base-steps 20000 --steps 3000   # on a GPU node
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.align.g2p import g2p, words_of  # noqa: E402
from voice_models.backend import Hyperparameters, Utterance, get_backend  # noqa: E402
from voice_models.evaluation import evaluate, voice_of  # noqa: E402

BASE_VOICES = {"v-us-m": "en-us+m3", "v-us-f": "en-us+f2", "v-gb-m": "en-gb+m1", "v-029-f": "en-029+f4"}
STAND_IN = ("bearer", "en-gb-scotland+m7")
WORDS = (
    "the water is wide I cannot get over and neither have wings to fly give me a boat that can carry two both "
    "shall row my love down by salley gardens did meet she passed with little snow white feet bid take life easy "
    "as leaves grow on tree young foolish would not agree in field river stood leaning shoulder laid hand"
).split()


def sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 9))) for _ in range(n)]


def speak(text: str, voice: str, rate: int, tmp: Path) -> np.ndarray:
    wav = tmp / "s.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True)
    x, sr = sf.read(wav, dtype="float32")
    return soxr.resample(x, sr, rate).astype(np.float32)


def utterances(speaker: str, voice: str, texts: list[str], rate: int, tmp: Path) -> list[Utterance]:
    prons = g2p(sorted({w for t in texts for w in words_of(t)}), "en-us")
    return [
        Utterance(
            f"{speaker}-{i}", speaker, t, tuple(prons[w][0] for w in words_of(t)), speak(t, voice, rate, tmp), rate
        )
        for i, t in enumerate(texts)
    ]


def until(utts: list[Utterance], minutes: float) -> list[Utterance]:
    out, total = [], 0.0
    for u in utts:
        if total >= minutes * 60:
            break
        out.append(u)
        total += u.seconds
    return out


def row(name: str, m: dict) -> str:
    def f(v):
        return "   n/a" if v is None else f"{v:6.3f}"

    return (
        f"{name:<22} {f(m['similarity_to_bearer'])} {f(m['similarity_to_others'])} {f(m['wer'])} "
        f"{f(m['dnsmos_ovrl'])} {m['synthesis_rtf'] or 0:8.1f}x"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--minutes", type=float, default=2.0, help="minutes of the stand-in's data to fine-tune on")
    ap.add_argument("--base-minutes", type=float, default=2.0, help="minutes per base voice")
    ap.add_argument("--base-steps", type=int, default=300)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.minutes, a.base_minutes, a.base_steps, a.steps = 0.5, 0.5, 10, 6
    backend = get_backend("vits")
    rate = backend.sample_rate(a.preset)
    tmp = Path(tempfile.mkdtemp(prefix="bench-voice-"))
    t0 = time.perf_counter()
    pool = sentences(40 + int(a.base_minutes * 30), seed=1)
    base_utts = [u for s, v in BASE_VOICES.items() for u in until(utterances(s, v, pool, rate, tmp), a.base_minutes)]
    bearer_all = utterances(*STAND_IN, sentences(10 + int(a.minutes * 30), seed=2), rate, tmp)
    held, train = bearer_all[:10], until(bearer_all[10:], a.minutes)
    others = [u for u in base_utts if int(u.segment_id.rsplit("-", 1)[1]) < 5]
    print(
        f"data: {len(base_utts)} base utterances, {len(train)} stand-in training utterances "
        f"({sum(u.seconds for u in train) / 60:.2f} min), {len(held)} held out; "
        f"made in {time.perf_counter() - t0:.0f} s"
    )

    hp = Hyperparameters(preset=a.preset, steps=a.base_steps, checkpoint_every=max(a.base_steps, 1))
    base = backend.train_base(base_utts, tmp / "base", hp, on_checkpoint=lambda _: None)
    ft_hp = replace(hp, steps=a.steps, checkpoint_every=max(a.steps, 1))
    ft = backend.fine_tune(tmp / "base", STAND_IN[0], train, tmp / "run", ft_hp, on_checkpoint=lambda _: None)
    backend.export(tmp / "run", tmp / "export")
    data_min = ft.audio_seconds / 60
    print(f"device {ft.device}, preset {a.preset}, batch {ft.batch_size}")
    print(f"base: {base.steps} steps in {base.seconds:.0f} s, loss {base.loss_first:.1f} -> {base.loss_last:.1f}")
    print(
        f"fine-tune: {ft.steps} steps in {ft.seconds:.0f} s on {data_min:.2f} min of data = "
        f"{ft.seconds / 60 / max(data_min, 1e-9):.1f} min of training per minute of data at this step count; "
        f"loss {ft.loss_first:.1f} -> {ft.loss_last:.1f}"
    )

    tuned = evaluate(lambda w: backend.synthesize(tmp / "export", w, STAND_IN[0]), held, others, language="en")
    target = voice_of(held)
    nearest = max(BASE_VOICES, key=lambda s: float(voice_of([u for u in others if u.speaker == s]) @ target))
    baseline = evaluate(lambda w: backend.synthesize(tmp / "base", w, nearest), held, others, language="en")
    real = evaluate(lambda w: (held[[u.words for u in held].index(w)].audio, rate), held, others, language="en")
    print(f"{'':<22} {'sim→b':>6} {'sim→o':>6} {'WER':>6} {'DNSMOS':>6} {'synth':>9}")
    print(row("fine-tuned", tuned))
    print(row(f"base as {nearest}", baseline))
    print(row("real held-out (ref.)", real))
    print("targets (GPU): fine-tune on 5 min in < 15 min; synthesis >= 50x real time; sim→b clearly above sim→o")


if __name__ == "__main__":
    main()
