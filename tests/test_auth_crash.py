"""Crash safety of the auth migration: SIGKILL the real CLI at random points of its apply; the auth database
is either exactly as before or exactly as a complete run leaves it (SQLite; the transaction core is the one the
tracking commands' crash tests exercise on every backend).  MWA_CRASH_SEED replays the kill points."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from mlflow_ws_admin.common.errors import ExitStatus

from .auth_helpers import plant_many

SEED = int(os.environ.get("MWA_CRASH_SEED", random.SystemRandom().randrange(2**32)))
KILLS = 3


def _start(auth_path, tracking_path) -> tuple[subprocess.Popen, float]:
    command = [
        sys.executable, "-m", "mlflow_ws_admin", "auth", "migrate-to-default-workspace", f"sqlite:///{auth_path}",
        "--tracking-uri", f"sqlite:///{tracking_path}", "--rename-conflicts", "{name} ({workspace})", "-y",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("Plan:"):  # the last line before the transaction begins
            return proc, time.monotonic()
    _, err = proc.communicate(timeout=60)
    raise AssertionError(f"apply never started (exit {proc.returncode}): {err}")


@pytest.mark.sqlite_only
def test_sigkill_during_the_auth_apply_leaves_before_or_after(auth_db, mlflow_db, tmp_path) -> None:
    plant_many(mlflow_db, auth_db, workspaces=8, experiments=400, users=150)
    auth_db.engine.dispose()
    mlflow_db.engine.dispose()
    original = auth_db.dump()
    pristine = tmp_path / "pristine.db"
    shutil.copyfile(auth_db.path, pristine)

    proc, started = _start(auth_db.path, mlflow_db.path)
    out, err = proc.communicate(timeout=300)
    window = time.monotonic() - started
    assert proc.returncode == ExitStatus.OK, err
    assert out.startswith("Applied: 24 role(s) in default"), out
    migrated = auth_db.dump()
    assert migrated != original

    rng = random.Random(SEED)
    outcomes = []
    for _ in range(KILLS):
        shutil.copyfile(pristine, auth_db.path)
        delay = rng.uniform(0.05, 0.9) * window
        proc, started = _start(auth_db.path, mlflow_db.path)
        time.sleep(max(0.0, delay - (time.monotonic() - started)))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        auth_db.engine.dispose()
        state = auth_db.dump()
        assert state in (original, migrated), f"seed {SEED}: a half-migrated auth database after {delay:.2f} s"
        outcomes.append("before" if state == original else "after")
    print(f"seed {SEED}, apply window {window:.2f} s, outcomes {outcomes}")
