"""Benchmark (not a test): build throughput against `sha256sum`, and peak memory.

Contract budget: hashing and zipping close to `sha256sum` speed; memory does not grow
with file size. Makes a payload (default 2 GiB, in files of at most 512 MiB, random bytes
like the already-compressed installers real packages carry) plus install/uninstall
scripts in a temporary folder, then times:
- `sha256sum` over the payload files;
- the build of one zip from that folder (`controller.build` zips it, then hashes the zip),
  in a child process whose peak RSS is reported next to a child that only imports.

The zip of a 2 GiB payload is over Distributor's 1 GB file limit, so this drives the
builder's zip writer directly (`zip_entries` + `write_zip`, the code `build_version`
runs) rather than `build_version`, which would refuse the result.

    python benchmarks/build_throughput.py [--size 2G] [--kind random|text] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
CHUNK = 1 << 20
FILE_LIMIT = 512 << 20


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def make_payload(folder: Path, size: int, kind: str) -> list[Path]:
    folder.mkdir(parents=True)
    for action in ("install", "uninstall"):
        script = folder / f"{action}.sh"
        script.write_text("#!/bin/sh\necho ok\n")
        script.chmod(0o755)
    files = []
    remaining, index = size, 0
    line = b"2024-01-01T00:00:00Z host-0042 agent[1234]: metric=cpu value=0.42 ok\n"
    text_chunk = (line * (CHUNK // len(line) + 1))[:CHUNK]
    while remaining > 0:
        path = folder / f"payload-{index:02d}.bin"
        part = min(remaining, FILE_LIMIT)
        with path.open("wb") as out:
            written = 0
            while written < part:
                n = min(CHUNK, part - written)
                out.write(os.urandom(n) if kind == "random" else text_chunk[:n])
                written += n
        files.append(path)
        remaining -= part
        index += 1
    return files


def child_build(source: Path, out: Path) -> None:
    """Run in the child process: zip `source` into `out` as the builder does."""
    sys.path.insert(0, str(PROJECT))
    from controller.build.builder import zip_entries
    from controller.build.zips import write_zip
    from controller.spec.models import PackageFile

    file = PackageFile(platform="amazon", arch="x86_64", source=source)
    started = time.perf_counter()
    digest, size = write_zip(zip_entries(file, source.parent), out)
    print(f"{time.perf_counter() - started:.3f} {size} {digest}")


def child_import() -> None:
    sys.path.insert(0, str(PROJECT))
    import controller.build.builder  # noqa: F401


def peak_rss_of(command: list[str]) -> tuple[str, int]:
    """Run `command`; return its output and its peak RSS in KiB (via wait4)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    output = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{command} failed with {process.returncode}")
    return output, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="2G", help="payload size, e.g. 2G, 200M (default 2G)")
    parser.add_argument("--kind", choices=("random", "text"), default="random")
    parser.add_argument("--dir", default=None, help="where to make the temporary payload")
    parser.add_argument("--child-build", nargs=2, metavar=("SOURCE", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--child-import", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_build:
        child_build(Path(args.child_build[0]), Path(args.child_build[1]))
        return
    if args.child_import:
        child_import()
        return

    size = parse_size(args.size)
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        source = Path(directory) / "source"
        started = time.perf_counter()
        files = make_payload(source, size, args.kind)
        made = time.perf_counter() - started
        mib = size / (1 << 20)
        print(f"payload: {mib:,.0f} MiB of {args.kind} bytes in {len(files)} files ({made:.1f} s)")

        def sha256sum() -> float:
            started = time.perf_counter()
            command = ["sha256sum", *map(str, files)]
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            return time.perf_counter() - started

        sha256sum()  # warm the page cache, so both sides read from memory
        sha_seconds = sha256sum()
        print(f"sha256sum:  {sha_seconds:7.2f} s  {mib / sha_seconds:8.1f} MiB/s")

        me = [sys.executable, str(Path(__file__).resolve())]
        output, build_rss = peak_rss_of([*me, "--child-build", str(source), f"{directory}/out.zip"])
        build_seconds, zip_size, _ = output.split()
        seconds = float(build_seconds)
        print(
            f"build:      {seconds:7.2f} s  {mib / seconds:8.1f} MiB/s  "
            f"({sha_seconds / seconds:.2f}x sha256sum speed; "
            f"zip {int(zip_size) / (1 << 20):,.0f} MiB, written then hashed)"
        )
        _, import_rss = peak_rss_of([*me, "--child-import"])
        print(
            f"peak RSS:   build {build_rss / 1024:.1f} MiB; a process that only imports the "
            f"builder {import_rss / 1024:.1f} MiB; growth "
            f"{(build_rss - import_rss) / 1024:.1f} MiB for {mib:,.0f} MiB of payload"
        )


if __name__ == "__main__":
    main()
