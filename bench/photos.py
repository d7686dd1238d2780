"""Benchmark: memory and time of taking one very large phone photo.

    ./scripts/bench photos [--sizes 12,108,200]

Phone-like JPEGs (a smooth scene plus sensor noise, quality 92, EXIF orientation 6, as a
camera writes them: sequential, 4:2:0) of 12, 108 and 200 megapixels are made once and
kept under `bench/out/`. Each goes through `app.media.images.process_photo` exactly as
intake runs it (check, reduced decode, orientation, display and thumbnail), in a fresh
child process that reports its peak resident memory (VmHWM, reset once the interpreter
has loaded the app and Pillow) above what it held then, and the time. For comparison, the
same 200-megapixel picture saved progressive is decoded the way Pillow would (draft, load):
what intake refuses over the pixel limit, and why.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from PIL import ExifTags, Image

from app.media.images import process_photo
from app.settings import Settings
from bench.common import OUT

SIZES = {12: (4000, 3000), 108: (12000, 9000), 200: (16320, 12240)}


def phone_jpeg(megapixels: int, *, progressive: bool = False) -> Path:
    """The photo file, made on first use (in strips: the whole picture is never a float
    array in memory)."""
    width, height = SIZES[megapixels]
    path = OUT / f"phone-{megapixels}mp{'-progressive' if progressive else ''}.jpg"
    if path.exists():
        return path
    OUT.mkdir(exist_ok=True)
    image = Image.new("RGB", (width, height))
    rng = np.random.default_rng(megapixels)
    for top in range(0, height, 512):
        y, x = np.mgrid[top : min(top + 512, height), 0:width].astype(np.float32)
        scene = np.stack([(x / 16) % 256, (y / 12) % 256, ((x + y) / 28) % 256], axis=-1)
        noisy = scene + rng.normal(0, 9, size=scene.shape).astype(np.float32)
        image.paste(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB"), (0, top))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    image.save(path, "JPEG", quality=92, exif=exif, progressive=progressive)
    return path


def _status_mb(field: str) -> float:
    """VmRSS or VmHWM (peak) of this process, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)


def child(path: Path, pillow_only: bool) -> None:
    """One measurement in this (fresh) process; prints a JSON line."""
    settings = Settings()
    Image.open(path).close()  # Pillow's plugins loaded before the base line
    # Reset the peak to now (ru_maxrss would carry the parent's peak across exec).
    Path("/proc/self/clear_refs").write_text("5")
    base = _status_mb("VmRSS")
    started = time.perf_counter()
    if pillow_only:
        with Image.open(path) as image:
            factor = settings.photo_display_px / max(image.size)
            image.draft("RGB", (round(image.width * factor), round(image.height * factor)))
            image.load()
            outcome = f"decoded at {image.width}×{image.height}"
    else:
        with tempfile.TemporaryDirectory() as work:
            try:
                facts = process_photo(
                    path,
                    Path(work),
                    max_pixels=settings.photo_max_pixels,
                    max_jpeg_pixels=settings.photo_max_jpeg_pixels,
                    display_px=settings.photo_display_px,
                    thumbnail_px=settings.photo_thumbnail_px,
                    zone=ZoneInfo("Asia/Shanghai"),
                )
                outcome = f"taken, {facts.width}×{facts.height}, display {facts.display.width}×"
                outcome += f"{facts.display.height}"
            except Exception as exc:  # the refusal is the figure here
                outcome = f"refused: {getattr(exc, 'code', type(exc).__name__)}"
    seconds = time.perf_counter() - started
    peak = _status_mb("VmHWM")
    print(json.dumps({"base_mb": base, "peak_mb": peak, "s": seconds, "outcome": outcome}))


def measure(path: Path, pillow_only: bool = False) -> dict[str, float | str]:
    command = [sys.executable, "-m", "bench.photos", "--child", str(path)]
    run = subprocess.run(
        command + (["--pillow-only"] if pillow_only else []),
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float | str] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="12,108,200")
    parser.add_argument("--child", type=Path)
    parser.add_argument("--pillow-only", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.pillow_only)
        return
    rows = [(f"{mp} MP sequential", phone_jpeg(mp), False)
            for mp in map(int, args.sizes.split(","))]  # fmt: skip
    big = phone_jpeg(200, progressive=True)
    rows += [("200 MP progressive, intake", big, False), ("200 MP progressive, Pillow", big, True)]
    print(f"{'photo':<30} {'file':>8} {'peak above base':>16} {'time':>8}  outcome")
    for name, path, pillow_only in rows:
        m = measure(path, pillow_only)
        size = path.stat().st_size / 2**20
        extra = float(m["peak_mb"]) - float(m["base_mb"])
        print(f"{name:<30} {size:>6.1f}MB {extra:>13.0f} MB {float(m['s']):>7.2f}s  {m['outcome']}")
        print(
            f"{'':<30} {'':>8} (base {float(m['base_mb']):.0f} MB, peak {float(m['peak_mb']):.0f})"
        )


if __name__ == "__main__":
    main()
