"""Progress on a terminal's stderr: a spinner while a plan is read, one line per table while apply runs.

The CLI passes a console only when stderr is a terminal and the output is not JSON; these never print elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:  # only named in hints: migrate and move never pay for the import modules
    from mlflow_ws_admin.engine.import_plan import ImportPlan
    from mlflow_ws_admin.engine.plan import Plan


@contextmanager
def planning_spinner(console: Console | None) -> Iterator[Callable[[str], None] | None]:
    """A spinner naming the table being read (a dry run of a large database takes a while)."""
    if console is None:
        yield None
        return
    from rich.text import Text

    with console.status(Text("Reading the schema")) as status:
        yield lambda table: status.update(Text(f"Checking {table}"))


#: (objects done, bytes done) of the artifact prefix being copied (``--artifact-policy relocate``)
CopyHook = Callable[[int, int], None]


@contextmanager
def apply_progress(
    plan: Plan, console: Console | None
) -> Iterator[tuple[Callable[[str, int, float], None] | None, CopyHook | None]]:
    """One line per table that moves rows: its rows and the seconds since the previous table finished (the
    first also waits for the locks and the checks before the first UPDATE).  The table being updated spins.
    With ``--artifact-policy relocate`` a first line shows the copy: objects, bytes and rate."""
    if console is None:
        yield None, None
        return
    from rich.progress import (
        DownloadColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        Task,
        TextColumn,
        TransferSpeedColumn,
    )
    from rich.text import Text

    class Seconds(ProgressColumn):
        def render(self, task: Task) -> Text:
            return Text("" if task.elapsed is None else f"{task.elapsed:.1f} s", style="progress.elapsed")

    columns = (SpinnerColumn(finished_text="✓"), TextColumn("{task.description}", markup=False))
    columns += (TextColumn("{task.fields[rows]}", justify="right", markup=False), Seconds())
    relocation = plan.resources.relocation if plan.resources else None
    if relocation is not None and relocation.objects:
        columns += (DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=console) as progress:
        copied = (
            _copy_task(progress, relocation.objects, relocation.bytes) if relocation and relocation.objects else None
        )
        pending = [
            progress.add_task(m.table, total=1, start=False, rows=f"{m.rows_to_move:,} rows")
            for m in plan.moves
            if m.rows_to_move
        ]
        pending.append(progress.add_task("verify and commit", total=1, start=False, rows=""))
        progress.start_task(pending[0])
        by_table = dict(zip((m.table for m in plan.moves if m.rows_to_move), pending, strict=False))

        def moved(table: str, rows: int, _elapsed: float) -> None:
            task = by_table.get(table)
            if task is None or task not in pending:
                return  # nothing to move there
            progress.update(task, completed=1, rows=f"{rows:,} rows")
            progress.stop_task(task)
            pending.remove(task)
            progress.start_task(pending[0])

        yield moved, copied
        progress.update(pending[-1], completed=1)
        progress.stop_task(pending[-1])


def _copy_task(progress: Any, objects: int, total_bytes: int) -> CopyHook:
    """The copy's line; the hook takes the counts of one prefix at a time (prefixes follow one another)."""
    task = progress.add_task("copy artifacts", total=max(total_bytes, 1), rows=f"0/{objects:,} objects")
    # objects and bytes of the prefixes finished, and the last counts of the one being copied
    done = {"objects": 0, "bytes": 0, "now_objects": 0, "now_bytes": 0}

    def advance(now_objects: int, now_bytes: int) -> None:
        if now_objects < done["now_objects"]:  # the next prefix began
            done["objects"] += done["now_objects"]
            done["bytes"] += done["now_bytes"]
        done["now_objects"], done["now_bytes"] = now_objects, now_bytes
        shown = min(objects, done["objects"] + now_objects)
        progress.update(task, completed=done["bytes"] + now_bytes, rows=f"{shown:,}/{objects:,} objects")

    return advance


@contextmanager
def import_progress(
    plan: ImportPlan, console: Console | None
) -> Iterator[tuple[Callable[[str, int], None] | None, CopyHook | None]]:
    """``db import-database``: a bar per table, advanced batch by batch; with ``--artifact-policy relocate`` a
    first line for the artifact copy (objects, bytes), which runs before the rows."""
    if console is None:
        yield None, None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    relocation = plan.relocation
    if relocation is not None and relocation.objects:
        columns += (TextColumn("{task.fields[rows]}", markup=False),)
    with Progress(*columns, console=console) as progress:
        on_copy = (
            _copy_task(progress, relocation.objects, relocation.bytes) if relocation and relocation.objects else None
        )
        tasks = {t.table: progress.add_task(t.table, total=t.rows, rows="") for t in plan.tables if t.rows}

        def copied(table: str, rows: int) -> None:
            if table in tasks:
                progress.update(tasks[table], completed=rows)

        yield copied, on_copy
