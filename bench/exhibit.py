"""Exhibit generation speed and the exhibit API under load, on loopback.

    python bench/exhibit.py [--clips N] [--clients 50] [--seconds 20] [--format mp3] [--workers 2] [--think-s S]

1. Generation: N approved texts of varied length (espeak-ng speaks for the bearer's model, so the figure is
   the pipeline around the voice: check, loudness, watermark, encoding, signing, catalog), as clips per
   minute and x real time.
2. Load: ``heirloom serve`` on 127.0.0.1, then ``--clients`` concurrent clients for ``--seconds``, each in a
   loop polling its exhibit's request, reading a clip with a Range request (time to first byte), and now and
   then asking for the other exhibit's clip (must be 404): once with no pause between rounds (the server's
   saturation, with the clients on the same cores) and once with about a second between rounds, as a kiosk
   or an audio guide polls. Prints p50/p99 latency, errors, cross-exhibit
   answers, and whether every request ended in a final state. Targets: p99 under 100 ms for status and for
   a clip's first byte; zero lost requests; zero cross-exhibit answers.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from catalog.manifests import Bearer  # noqa: E402
from catalog.storage import open_storage  # noqa: E402
from catalog.tables import Catalog  # noqa: E402
from tasks.consent import grant  # noqa: E402
from tasks.demo_collection import DemoVoice, synthesize  # noqa: E402
from tasks.exhibits import add_exhibit, approve, rows_of, submit  # noqa: E402
from tasks.generation import Voice, generate_text, queued  # noqa: E402
from tasks.provenance import keygen, site_signer  # noqa: E402
from tasks.watermark import new_key_file  # noqa: E402

SENTENCES = [
    "The water is wide, I cannot get over.",
    "And neither have I wings to fly.",
    "Give me a boat that can carry two, and both shall row, my love and I.",
    "Long ago, when the river ran high, the ferryman would not cross.",
    "He waited by the fire and told the children of the drowned bell.",
    "Each spring they listened for it; each spring it rang a little fainter.",
]
FINAL = {"ready", "rejected", "failed", "withdrawn"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _texts(n: int, rng: random.Random) -> list[str]:
    return [" ".join(rng.sample(SENTENCES, rng.randint(1, 4))) + f" ({i})" for i in range(n)]


def generation(cat: Catalog, store, exhibits, key, signer, n: int, fmt: str, tmp: Path) -> dict[str, list[str]]:
    voice_of = DemoVoice("b-1", "espeak-ng", "en-gb-scotland", "en-gb-scotland")

    def speak(text: str, seed: int) -> tuple[np.ndarray, int]:
        return synthesize(voice_of, text, tmp / f"s-{threading.get_ident()}.wav")

    voice = Voice(model_id="bench-model", bearer_id="b-1", synthesize=speak)
    rng = random.Random(7)
    requests: dict[str, list[str]] = {}
    seconds, start = 0.0, time.perf_counter()
    states: dict[str, int] = {}
    for exhibit in exhibits:
        rows = submit(cat, exhibit, "b-1", _texts(n // len(exhibits), rng), fmt)
        approve(cat, rows[0].request_id, by="bench-curator")
        requests[exhibit.exhibit_id] = [rows[0].request_id]
        for row in queued(cat, request_id=rows[0].request_id):
            done = generate_text(cat, store, row, voice=voice, key=key, sign=signer)
            states[done.state] = states.get(done.state, 0) + 1
    elapsed = time.perf_counter() - start
    clips = cat.read("clips").to_pylist()
    seconds = sum(c["duration_s"] or 0 for c in clips)
    print(f"generation: {len(clips)} clips ({states}) in {elapsed:.1f} s on {os.cpu_count()} cores")
    print(f"  {len(clips) / elapsed * 60:.1f} clips/min, {seconds / elapsed:.1f}x real time ({seconds:.0f} s of audio)")
    return requests


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def load(
    base: str,
    tokens: dict[str, str],
    requests: dict[str, list[str]],
    clips,
    clients: int,
    seconds: float,
    think_s: float,
):
    import httpx

    lat_status: list[float] = []
    lat_first_byte: list[float] = []
    errors: list[str] = []
    cross: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    exhibit_ids = sorted(tokens)

    def client(i: int) -> None:
        mine = exhibit_ids[i % len(exhibit_ids)]
        other = exhibit_ids[(i + 1) % len(exhibit_ids)]
        headers = {"Authorization": f"Bearer {tokens[mine]}"}
        rng = random.Random(i)
        with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
            while time.monotonic() < deadline:
                try:
                    t0 = time.perf_counter()
                    r = http.get(f"/v1/requests/{rng.choice(requests[mine])}")
                    took = time.perf_counter() - t0
                    if r.status_code != 200:
                        raise RuntimeError(f"status {r.status_code}")
                    clip = rng.choice(clips[mine])
                    start = rng.randrange(0, 4096)
                    t0 = time.perf_counter()
                    span = {"Range": f"bytes={start}-{start + 65535}"}
                    with http.stream("GET", f"/v1/clips/{clip}", headers=span) as s:
                        chunks = s.iter_raw(1024)
                        next(chunks)
                        first = time.perf_counter() - t0
                        if s.status_code != 206:
                            raise RuntimeError(f"clip status {s.status_code}")
                        for _ in chunks:
                            pass
                    if rng.random() < 0.1:
                        foreign = http.get(f"/v1/clips/{rng.choice(clips[other])}")
                        if foreign.status_code != 404:
                            with lock:
                                cross.append(f"{mine} got {foreign.status_code} for {other}'s clip")
                    with lock:
                        lat_status.append(took)
                        lat_first_byte.append(first)
                    if think_s:
                        time.sleep(rng.uniform(0.5, 1.5) * think_s)
                except Exception as e:  # a benchmark counts every failure rather than stopping at one
                    with lock:
                        errors.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = len(lat_status)
    print(
        f"load: {clients} clients, {f'{think_s:g} s' if think_s else 'no'} pause between rounds, {seconds:.0f} s: "
        f"{total} rounds ({total / seconds:.0f}/s), {len(errors)} errors"
    )
    print(f"  status      p50 {_pct(lat_status, 50):.1f} ms  p99 {_pct(lat_status, 99):.1f} ms")
    print(f"  first byte  p50 {_pct(lat_first_byte, 50):.1f} ms  p99 {_pct(lat_first_byte, 99):.1f} ms")
    print(f"  cross-exhibit answers: {len(cross)}")
    for e in sorted(set(errors))[:5]:
        print(f"  error: {e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=12, help="texts to generate, split over two exhibits")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--format", default="mp3", choices=["wav", "flac", "mp3", "m4a", "opus"])
    ap.add_argument("--workers", type=int, default=2, help="API worker processes of heirloom serve")
    ap.add_argument(
        "--think-s",
        type=float,
        default=None,
        help="each client's pause between rounds (default: a run with none, which saturates the server, then 1 s)",
    )
    args = ap.parse_args()
    if args.clips < 2 or args.clients < 1 or args.seconds <= 0:
        ap.error("--clips must be at least 2, --clients at least 1, --seconds positive")
    tmp = Path(tempfile.mkdtemp(prefix="heirloom-bench-exhibit-"))
    store = open_storage(str(tmp / "archive"))
    cat = Catalog(store)
    cat.init()
    cat.insert_new("bearers", [Bearer(bearer_id="b-1", status="living", dialect="en-gb-scotland")], key="bearer_id")
    scopes = ["voice_synthesis", "exhibit_generation"]
    grant(cat, store, bearer_id="b-1", grantor_type="self", grantor_id="b-1", scopes=scopes, audiences=["public"])
    made = [add_exhibit(cat, f"kiosk-{i}", venue="Hall", audience="public", purpose="education") for i in (1, 2)]
    tokens = {x.exhibit_id: token for x, token in made}
    key = new_key_file(tmp / "site.key")
    keygen(tmp / "identity")
    signer = site_signer(tmp / "identity")
    requests = generation(cat, store, [x for x, _ in made], key, signer, args.clips, args.format, tmp)
    clips = {x: [c["clip_id"] for c in cat.read("clips").to_pylist() if c["exhibit_id"] == x] for x in tokens}
    if not all(clips.values()):
        sys.exit("no clip was generated for one of the exhibits; see the states above")

    port = _free_port()
    env = {**os.environ, "HEIRLOOM_ARCHIVE": str(tmp / "archive"), "HEIRLOOM_EXHIBIT_GENERATE_IN_PROCESS": "false"}
    env["HEIRLOOM_EXHIBIT_RATE_BURST"] = "1000000"  # the bench measures latency, not the limiter
    heirloom = str(Path(sys.executable).parent / "heirloom")
    server = subprocess.Popen(
        [heirloom, "serve", "--port", str(port), "--workers", str(args.workers)],
        env=env,
        start_new_session=True,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        for _ in range(120):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            sys.exit("heirloom serve did not start")
        for think_s in [0.0, 1.0] if args.think_s is None else [args.think_s]:
            load(base, tokens, requests, clips, args.clients, args.seconds, think_s)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    lost = [r for rid in sum(requests.values(), []) for r in rows_of(cat, request_id=rid) if r.state not in FINAL]
    print(f"  requests not in a final state: {len(lost)}")


if __name__ == "__main__":
    main()
