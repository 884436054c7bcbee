"""Benchmark (not a test): the build streams; speed next to `sha256sum`, memory flat with size.

Contract budget: hashing and zipping close to `sha256sum` speed; memory does not grow with
file size. For each payload size (default a small 9 MB file and a large 900 MB one, in the
same run) it makes, in a temporary folder, a one-package repository whose version's source
folder holds install/uninstall scripts and one payload file of that size (random bytes,
like the already-compressed installers real packages carry; `--kind text` for deflated
ones), then times, each in a fresh child process whose peak RSS is taken with wait4:
- `build_version`, exactly as a pass runs it (scan, content hashes, zip, zip hash);
- `build_version(stamps=False)`, as `ssm-gitops build --out` runs it (no source hashes);
- `verify_artifact`, the streamed re-hash of the built zip that apply runs before upload;
- `verify_fresh_build`, the rebuild from the sources that apply runs before the first
  upload of a version whose zip was reused from the cache (the extra cost of a publish);
- `sha256sum` over the same payload file (page cache warmed first, so all read memory).
Peak RSS growth is reported against a child that only imports the builder.

    python benchmarks/build_throughput.py [--sizes 9M,900M] [--kind random|text] [--dir /tmp]
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
MB = 10**6

PACKAGE = """apiVersion: ssm-gitops/v1
kind: Package
metadata: {name: bench}
spec:
  defaultVersion: "1.0"
  versions:
    - name: "1.0"
      files:
        - {platform: amazon, arch: x86_64, source: bench/1.0}
"""


def parse_size(text: str) -> int:
    units = {"K": 10**3, "M": 10**6, "G": 10**9}
    text = text.strip().upper().removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def make_repository(root: Path, size: int, kind: str) -> Path:
    """A repository with one package version whose source holds one `size`-byte file."""
    source = root / "packages" / "bench" / "1.0"
    source.mkdir(parents=True)
    (root / "packages" / "bench.yaml").write_text(PACKAGE)
    for action in ("install", "uninstall"):
        (source / f"{action}.sh").write_text("#!/bin/sh\necho ok\n")
    line = b"2024-01-01T00:00:00Z host-0042 agent[1234]: metric=cpu value=0.42 ok\n"
    text_chunk = (line * (CHUNK // len(line) + 1))[:CHUNK]
    with (source / "payload.bin").open("wb") as out:
        written = 0
        while written < size:
            n = min(CHUNK, size - written)
            out.write(os.urandom(n) if kind == "random" else text_chunk[:n])
            written += n
    return root


def child(mode: str, repo: str, out: str) -> None:
    """In the child: build the version (or verify the built zip); print seconds and sizes."""
    sys.path.insert(0, str(PROJECT))
    from controller.packaging import build_version, verify_artifact, verify_fresh_build
    from controller.repository import load_repository

    if mode == "import":
        return
    repository = load_repository(Path(repo))
    started = time.perf_counter()
    # "out": as `ssm-gitops build --out` (no stamps, sources not hashed); else as a pass.
    built = build_version(repository, "bench", "1.0", Path(out), stamps=mode != "out")
    seconds = time.perf_counter() - started
    (file,) = built.files
    if mode == "verify":  # the build above reused the cached zip: time the re-hash only
        started = time.perf_counter()
        verify_artifact(file.path, file.sha256)
        seconds = time.perf_counter() - started
    if mode == "fresh":  # reused from the cache (stamp): time the rebuild before upload
        started = time.perf_counter()
        verify_fresh_build([(file.path, file.sha256)], built.manifest)
        seconds = time.perf_counter() - started
    print(f"{max(seconds, 0.001):.3f} {file.size}")  # a tiny zip re-hashes in no time


def peak_rss_of(command: list[str]) -> tuple[str, int]:
    """Run `command`; return its output and its peak RSS in KiB (via wait4)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    output = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{command} failed with {process.returncode}")
    return output, usage.ru_maxrss


def measure(size: int, kind: str, directory: Path, import_rss: int) -> None:
    root = make_repository(directory / f"repo-{size}", size, kind)
    payload = root / "packages" / "bench" / "1.0" / "payload.bin"
    out = directory / f"out-{size}"
    megabytes = size / MB

    def sha256sum() -> float:
        started = time.perf_counter()
        subprocess.run(["sha256sum", str(payload)], check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - started

    sha256sum()  # warm the page cache, so both sides read from memory
    sha_seconds = sha256sum()
    me = [sys.executable, str(Path(__file__).resolve())]
    output, build_rss = peak_rss_of([*me, "--child", "build", str(root), str(out)])
    build_seconds, zip_size = float(output.split()[0]), int(output.split()[1])
    output, verify_rss = peak_rss_of([*me, "--child", "verify", str(root), str(out)])
    verify_seconds = float(output.split()[0])
    output, fresh_rss = peak_rss_of([*me, "--child", "fresh", str(root), str(out)])
    fresh_seconds = float(output.split()[0])
    output, out_rss = peak_rss_of([*me, "--child", "out", str(root), str(directory / "cli")])
    out_seconds = float(output.split()[0])
    print(f"\n{megabytes:,.0f} MB {kind} payload (zip {zip_size / MB:,.0f} MB)")
    print(f"  sha256sum       {sha_seconds:7.2f} s  {megabytes / sha_seconds:7.1f} MB/s")
    print(
        f"  build_version   {build_seconds:7.2f} s  {megabytes / build_seconds:7.1f} MB/s"
        f"  ({sha_seconds / build_seconds:.2f}x sha256sum speed: zip written, then hashed)"
        f"  peak RSS +{(build_rss - import_rss) / 1024:.1f} MiB"
    )
    print(
        f"  build --out     {out_seconds:7.2f} s  {megabytes / out_seconds:7.1f} MB/s"
        f"  ({sha_seconds / out_seconds:.2f}x sha256sum speed: no stamp, sources not hashed)"
        f"  peak RSS +{(out_rss - import_rss) / 1024:.1f} MiB"
    )
    print(
        f"  verify (upload) {verify_seconds:7.2f} s  {zip_size / MB / verify_seconds:7.1f} MB/s"
        f"  ({sha_seconds / verify_seconds * zip_size / size:.2f}x sha256sum speed)"
        f"  peak RSS +{(verify_rss - import_rss) / 1024:.1f} MiB"
    )
    print(
        f"  fresh (publish) {fresh_seconds:7.2f} s  {megabytes / fresh_seconds:7.1f} MB/s"
        "  (rebuild of a zip reused from the cache, before its first upload)"
        f"  peak RSS +{(fresh_rss - import_rss) / 1024:.1f} MiB"
    )
    for path in (payload, *out.iterdir(), *(directory / "cli").iterdir()):
        path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="9M,900M", help="payload sizes (default 9M,900M)")
    parser.add_argument("--kind", choices=("random", "text"), default="random")
    parser.add_argument("--dir", default=None, help="where to make the temporary repository")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "REPO", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    me = [sys.executable, str(Path(__file__).resolve())]
    _, import_rss = peak_rss_of([*me, "--child", "import", "-", "-"])
    print(f"a process that only imports the builder: peak RSS {import_rss / 1024:.1f} MiB")
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        for size in map(parse_size, args.sizes.split(",")):
            measure(size, args.kind, Path(directory), import_rss)


if __name__ == "__main__":
    main()
