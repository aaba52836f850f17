"""Ingest benchmark: files/s and MB/s for many small files and one large file, local and on S3.

Seconds cover the flow run alone; the ephemeral Prefect server's start, once per process, is shown
apart. Each run is a fresh child process running the real ``ingest`` flow (ephemeral Prefect), so its peak
resident memory (ru_maxrss) is its own: memory must stay flat in file size because everything streams.
S3 runs use a real SeaweedFS server on 127.0.0.1 for both the incoming collection and the archive.

    python bench/ingest.py                       # 1,000 small files and one 2 GB file, local and S3
    python bench/ingest.py --small 200 --big-gb 0.5 --only local
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.s3server import s3_environment, seaweed_server  # noqa: E402

ROW = "{:<7} {:<6} {:>6} {:>9} {:>8} {:>8} {:>7} {:>12} {:>10}"


def make_small(root: Path, n: int) -> int:
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = ["file,bearer_id"]
    for i in range(n):
        sf.write(str(root / f"s{i:05d}.wav"), rng.normal(0, 0.1, 16000).astype(np.float32), 16000, subtype="PCM_16")
        rows.append(f"s{i:05d}.wav,b-bench")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return sum(p.stat().st_size for p in root.glob("*.wav"))


def make_big(root: Path, gigabytes: float) -> int:
    """One long 48 kHz / 24-bit stereo WAV, written block by block (as a day-long field session)."""
    root.mkdir(parents=True)
    rate, block = 48000, 48000 * 60
    frames = int(gigabytes * 1e9 / (3 * 2))
    rng = np.random.default_rng(1)
    noise = (rng.normal(0, 0.05, (block, 2))).astype(np.float32)
    with sf.SoundFile(str(root / "session.wav"), "w", rate, 2, subtype="PCM_24", format="WAV") as f:
        written = 0
        while written < frames:
            n = min(block, frames - written)
            f.write(np.roll(noise, written % 997, axis=0)[:n])
            written += n
    (root / "manifest.csv").write_text("file,bearer_id\nsession.wav,b-bench\n")
    return (root / "session.wav").stat().st_size


def upload(local: Path, uri: str) -> None:
    from catalog.storage import open_storage

    store = open_storage(uri)
    for p in sorted(local.iterdir()):
        with open(p, "rb") as f:
            store.put(p.name, f)


def child(source: str, archive: str) -> None:
    from catalog.manifests import Bearer
    from catalog.tables import Catalog
    from flows.ingest import ingest

    cat = Catalog.open(archive)
    cat.init()
    cat.insert_new("bearers", [Bearer(bearer_id="b-bench")], key="bearer_id")
    from prefect import flow

    start = time.perf_counter()
    flow(name="warm-up")(lambda: None)()  # the ephemeral Prefect server starts once per process
    startup = time.perf_counter() - start
    start = time.perf_counter()
    summary = ingest(source=source, collection="bench", archive=archive)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "seconds": seconds,
                "startup": startup,
                "counts": summary["counts"],
                "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def run_child(source: str, archive: str, env: dict[str, str]) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", source, archive], capture_output=True, text=True, env=env, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=1000, help="number of small files (1 s, 16 kHz, 16-bit)")
    ap.add_argument("--big-gb", type=float, default=2.0, help="size of the large file in GB")
    ap.add_argument("--only", choices=["local", "s3"], help="run one backend only")
    ap.add_argument("--child", nargs=2, metavar=("SOURCE", "ARCHIVE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return

    work = Path(tempfile.mkdtemp(prefix="heirloom-bench-"))
    env = {
        **os.environ,
        "PREFECT_HOME": str(work / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    try:
        t = time.perf_counter()
        sizes = {"small": make_small(work / "small", args.small), "big": make_big(work / "big", args.big_gb)}
        files = {"small": args.small, "big": 1}
        print(
            f"# generated inputs in {time.perf_counter() - t:.0f}s: {args.small} small files "
            f"({sizes['small'] / 1e6:.1f} MB), one {sizes['big'] / 1e9:.2f} GB WAV",
            flush=True,
        )
        print(ROW.format("backend", "set", "files", "MB", "seconds", "files/s", "MB/s", "peak RSS MB", "startup s"))
        backends = [args.only] if args.only else ["local", "s3"]
        for backend in backends:
            if backend == "local":
                results = {name: run_child(str(work / name), str(work / f"archive-{name}"), env) for name in sizes}
            else:
                with seaweed_server() as endpoint:
                    s3env = {**env, **s3_environment(endpoint)}
                    os.environ.update(s3_environment(endpoint))
                    from catalog.storage import open_storage

                    open_storage("s3://bench").ensure_bucket()  # type: ignore[attr-defined]
                    results = {}
                    for name in sizes:
                        upload(work / name, f"s3://bench/incoming/{name}")
                        results[name] = run_child(f"s3://bench/incoming/{name}", f"s3://bench/archive-{name}", s3env)
            for name, r in results.items():
                assert r["counts"]["ingested"] == files[name], r
                mb = sizes[name] / 1e6
                figures = (
                    files[name],
                    f"{mb:.1f}",
                    f"{r['seconds']:.1f}",
                    f"{files[name] / r['seconds']:.1f}",
                    f"{mb / r['seconds']:.1f}",
                    f"{r['maxrss_mb']:.0f}",
                    f"{r['startup']:.1f}",
                )
                print(ROW.format(backend, name, *figures), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
