"""`--artifact-policy relocate`'s copy: one experiment's prefix of N files (default 10,000), copied with the
store layer's bounded parallel copy against a sequential loop over the same client and the same code
(``workers=1``), on the local filesystem and on S3 (moto's server mode, started here on 127.0.0.1).

    python bench/relocate.py                       # both stores, 10,000 files
    python bench/relocate.py --stores local --objects 10000 --workers 16

Each copy goes to a fresh target prefix; the figures are wall-clock seconds of ``copy_prefix`` (listing both
prefixes included), then ``verify_copy`` (against the copy's own listing, as ``transfer`` does) and
``delete_copied`` of the parallel copy, and the CPU each copy took per object: this process's, and for S3 the
server's (a Python process of its own on the same cores, whose CPU bounds how fast it answers).  Within one
local filesystem ``copy_prefix`` links in one thread whatever ``workers`` says (threads only contend for links),
so there both runs take the same path.  Prints two lines per store and exits 1 when the parallel copy is under
``--goal`` times faster than the sequential one.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow_ws_admin.stores.base import copy_prefix, delete_copied, verify_copy
from mlflow_ws_admin.stores.locate import locate


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _cpu(pid: int | None) -> float:
    """CPU seconds used so far: this process, or another one (the S3 server) read from /proc."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measured(fn, server: int | None):
    """(wall seconds, this process's CPU seconds, the server's CPU seconds or None, result)."""
    cpu, served = _cpu(None), _cpu(server) if server else None
    wall, result = _timed(fn)
    return wall, _cpu(None) - cpu, (_cpu(server) - served) if server else None, result


def _local(n: int, workdir: Path) -> tuple[str, str]:
    src = workdir / "dest/workspaces/team-a/1"
    for i in range(n):
        path = src / f"run-{i // 100:03d}/artifacts/file-{i:05d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 1024)
    return str(src), str(workdir / "dest/workspaces")


def _moto() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    os.environ["MLFLOW_S3_ENDPOINT_URL"] = endpoint
    return proc, endpoint


def _s3(n: int, endpoint: str) -> tuple[str, str]:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket="bench-artifacts")
    keys = [f"dest/workspaces/team-a/1/run-{i // 100:03d}/artifacts/file-{i:05d}.txt" for i in range(n)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: client.put_object(Bucket="bench-artifacts", Key=k, Body=b"x" * 1024), keys))
    return "s3://bench-artifacts/dest/workspaces/team-a/1", "s3://bench-artifacts/dest/workspaces"


def bench(store: str, source: str, targets: str, workers: int, server: int | None = None) -> dict[str, float]:
    """The copy as ``transfer`` runs it (copy, then verify against the copy's own listing, then delete), once
    sequentially and once in parallel, each to a fresh target."""
    src = locate(source)
    sequential, seq_cpu, seq_server, _ = _measured(
        lambda: copy_prefix(src, locate(f"{targets}/seq/1"), workers=1), server
    )
    parallel, par_cpu, par_server, result = _measured(
        lambda: copy_prefix(src, locate(f"{targets}/team-b/1"), workers=workers), server
    )
    assert result.copied == result.objects
    verify, _ = _timed(lambda: verify_copy(src, locate(f"{targets}/team-b/1"), result.listed))
    delete, deleted = _timed(lambda: delete_copied(src, locate(f"{targets}/team-b/1")))
    assert deleted == result.objects
    return {
        "objects": result.objects,
        "sequential": sequential,
        "parallel": parallel,
        "sequential_cpu": seq_cpu,
        "parallel_cpu": par_cpu,
        "sequential_server_cpu": seq_server,
        "parallel_server_cpu": par_server,
        "verify": verify,
        "delete": delete,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--stores", default="local,s3")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--goal", type=float, default=4.0)
    args = parser.parse_args()
    missed = False
    for store in args.stores.split(","):
        with tempfile.TemporaryDirectory(prefix="mwa-bench-relocate-") as tmp:
            server = None
            if store == "local":
                source, targets = _local(args.objects, Path(tmp))
            else:
                server, endpoint = _moto()
                source, targets = _s3(args.objects, endpoint)
            try:
                r = bench(store, source, targets, args.workers, server.pid if server else None)
            finally:
                if server is not None:
                    server.kill()
                    server.wait()
        speedup = r["sequential"] / r["parallel"]
        verdict = "PASS" if speedup >= args.goal else "MISS"
        missed |= speedup < args.goal
        print(
            f"{store}: {r['objects']:,} objects: sequential {r['sequential']:.2f} s, parallel ({args.workers} workers) "
            f"{r['parallel']:.2f} s = {speedup:.1f}x [{verdict} goal {args.goal:g}x]; verify {r['verify']:.2f} s, "
            f"delete {r['delete']:.2f} s"
        )
        per = 1000 / r["objects"]
        line = f"  CPU per object: sequential {r['sequential_cpu'] * per:.2f} ms, parallel {r['parallel_cpu'] * per:.2f} ms"
        if r["sequential_server_cpu"] is not None:
            line += (
                f"; the S3 server's: sequential {r['sequential_server_cpu'] * per:.2f} ms, "
                f"parallel {r['parallel_server_cpu'] * per:.2f} ms"
            )
        print(line, f"(load average {os.getloadavg()[0]:.1f})")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
