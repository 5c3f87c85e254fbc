"""Decode benchmark: ms per 1280x720 frame, success on good frames, false accepts on bad frames.

A FIXED, seeded set of frames from the camera simulator (labels crossing the view in runs of frames, with empty
belt, smudged codes, codes cut by the frame edge and labels of another batch among them) is generated into
a folder once (default: a temp dir keyed by the seed) and read back into memory; then each decoder runs over
every frame in order, timed with perf_counter around `decode()` alone. Rows:

  zxing-cpp full frame      baseline: ZxingDecoder on the whole frame (zxing's own pyramid on)
  pyzbar full frame         baseline: PyzbarDecoder on the whole frame
  zxing-cpp + ROI pipeline  ours: TrackingDecoder (ROI tracker + downscale + entry strip + full-frame fallback)

Success = a good frame (at least one readable label of ours, its code wholly in view) in which every
readable label of ours was decoded. False accept = a decoded content that is not the content of any label in that frame
(a misread, or a guess). A label of another batch read as its own content is NOT a false accept (the decoder
read what is there; the line's matching raises the alarm) and is counted as "foreign read"; reading it as
one of ours would be a false accept. Figures are printed, never asserted.

    python bench/decode_bench.py [--frames 600] [--seed 1] [--folder DIR] [--engines zxing,pyzbar,ours]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from drivers.decoder import PyzbarDecoder, TrackingDecoder, ZxingDecoder  # noqa: E402
from simulators.camera import CameraSimulator  # noqa: E402
from conditions import cpu_model, version  # noqa: E402 (bench/ is the script's folder)

TARGET = "target: <= 1.5 ms median, >= 99.5 % of good frames, 0 false accepts"


def renderer_version() -> str:
    """A digest of the camera simulator's source: frames written by another version are written again."""
    import hashlib
    import simulators.camera as camera_module

    return hashlib.sha256(Path(camera_module.__file__).read_bytes()).hexdigest()[:12]


def frame_set(folder: Path, count: int, seed: int) -> dict:
    manifest_path = folder / "manifest.json"
    version = renderer_version()
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("count") == count and manifest.get("seed") == seed and manifest.get("renderer") == version:
            return manifest
    print(f"generating {count} frames (seed {seed}) into {folder} …", flush=True)
    started = time.perf_counter()
    manifest = CameraSimulator(seed=seed).write_frames(folder, count, seed=seed)
    manifest["renderer"] = version
    manifest_path.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    print(f"  done in {time.perf_counter() - started:.1f} s", flush=True)
    return manifest


def run(decoder: object, frames: list[np.ndarray], manifest: dict, fps: float) -> dict:
    times: list[float] = []
    good_times: list[float] = []
    good = good_ok = false_accepts = foreign_reads = bad_reads = 0
    misses: list[str] = []
    for index, (frame, entry) in enumerate(zip(frames, manifest["frames"])):
        at = index / fps
        started = time.perf_counter()
        if isinstance(decoder, TrackingDecoder):
            found = decoder.decode(frame, at=at)
        else:
            found = decoder.decode(frame)  # type: ignore[attr-defined]
        elapsed = (time.perf_counter() - started) * 1000
        times.append(elapsed)
        texts = {d.text for d in found}
        truth = {label["text"]: label for label in entry["labels"]}
        false_accepts += len(texts - set(truth))
        foreign_reads += sum(1 for t in texts if t in truth and truth[t]["role"] == "foreign")
        if entry["kind"] == "good":
            good += 1
            good_times.append(elapsed)
            wanted = {t for t, label in truth.items() if label["readable"] and label["role"] == "ours"}
            if wanted <= texts:
                good_ok += 1
            else:
                misses.append(entry["file"])
        # A smudged or cut code read right anyway is no error (the content is what is printed there).
        bad_reads += sum(1 for t in texts if t in truth and not truth[t]["readable"])
    return {
        "median": statistics.median(times), "p95": float(np.percentile(times, 95)),
        "mean": statistics.fmean(times), "good_median": statistics.median(good_times) if good_times else 0.0,
        "good": good, "good_ok": good_ok, "false_accepts": false_accepts, "foreign_reads": foreign_reads,
        "bad_reads": bad_reads, "misses": misses,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--folder", type=Path, default=None, help="frame set folder (default: a temp dir)")
    parser.add_argument("--engines", default="zxing,pyzbar,ours")
    parser.add_argument("--fps", type=float, default=30.0, help="frame times given to the tracker")
    parser.add_argument("--repeat", type=int, default=1, help="passes over the set per decoder (times pooled)")
    args = parser.parse_args(argv)

    folder = args.folder or Path(tempfile.gettempdir()) / f"packing-station-decode-bench-{args.seed}-{args.frames}"
    manifest = frame_set(folder, args.frames, args.seed)
    frames = [cv2.imread(str(folder / f["file"]), cv2.IMREAD_COLOR) for f in manifest["frames"]]

    print()
    print("Decode benchmark — fixed frame set from the camera simulator")
    print(f"  machine   {cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}")
    print(f"  python    {platform.python_version()}; zxing-cpp {version('zxing-cpp')}, pyzbar {version('pyzbar')}"
          f", opencv {cv2.__version__}, numpy {np.__version__}; cv2 threads {cv2.getNumThreads()}")
    kinds = ", ".join(f"{k} {v}" for k, v in manifest["kinds"].items())
    print(f"  frames    {manifest['count']} x {manifest['width']}x{manifest['height']} BGR JPEG q{manifest['jpeg_quality']}"
          f" (seed {manifest['seed']}, belt {manifest['step_px']:g} px/frame): {kinds}")
    print(f"  folder    {folder}")
    print(f"  {TARGET}")
    print()
    header = (f"{'decoder':<28}{'median ms':>10}{'p95 ms':>9}{'mean ms':>9}{'good med':>10}"
              f"{'good read':>16}{'false acc':>10}{'foreign':>9}")
    print(header)
    print("-" * len(header))
    rows = {
        "zxing": ("zxing-cpp full frame", lambda: ZxingDecoder(figures=False)),
        "pyzbar": ("pyzbar full frame", lambda: PyzbarDecoder(figures=False)),
        "ours": ("zxing-cpp + ROI pipeline", lambda: TrackingDecoder(ZxingDecoder())),
    }
    details = {}
    for key in [k.strip() for k in args.engines.split(",") if k.strip()]:
        if key not in rows:
            print(f"unknown engine {key!r}; known: {', '.join(rows)}")
            return 2
        label, make = rows[key]
        decoder = make()
        # One untimed frame first: imports, first allocations.
        (decoder.decode(frames[0], at=-1.0) if isinstance(decoder, TrackingDecoder) else decoder.decode(frames[0]))
        if isinstance(decoder, TrackingDecoder):
            decoder.tracker.reset()
        result = None
        for _ in range(max(1, args.repeat)):
            if isinstance(decoder, TrackingDecoder):
                decoder.tracker.reset()
            result = run(decoder, frames, manifest, args.fps)
        assert result is not None
        pct = 100.0 * result["good_ok"] / max(1, result["good"])
        print(f"{label:<28}{result['median']:>10.2f}{result['p95']:>9.2f}{result['mean']:>9.2f}"
              f"{result['good_median']:>10.2f}{result['good_ok']:>7}/{result['good']:<4}{pct:>5.1f}%"
              f"{result['false_accepts']:>10}{result['foreign_reads']:>9}")
        details[key] = (decoder, result)
    print()
    for key, (decoder, result) in details.items():
        if result["misses"]:
            shown = ", ".join(result["misses"][:8]) + (" …" if len(result["misses"]) > 8 else "")
            print(f"  {key}: good frames not read: {shown}")
        if isinstance(decoder, TrackingDecoder):
            c = decoder.counts
            print(f"  {key} paths: {c.frames} frames; ROI {c.roi_hits}/{c.roi_decodes} hits, entry strip "
                  f"{c.entry_hits}/{c.entry_decodes}, full frame (shrunk) {c.full_hits}/{c.full_decodes}, "
                  f"native {c.native_hits}/{c.native_decodes}")
    print("  (median/p95/mean over all frames, good and bad; 'good med' over good frames only;"
          " 'foreign' = labels of another batch read as what they are)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
