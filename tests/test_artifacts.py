"""Artifact-location findings: normalization, the single-pass overlap finder, and every finding kind through the
migrate dry run on every backend."""

from __future__ import annotations

import random

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from mlflow_ws_admin.common.errors import ExitStatus
from mlflow_ws_admin.db.schema import reflect_schema
from mlflow_ws_admin.engine import artifact_scan
from mlflow_ws_admin.findings import artifacts
from mlflow_ws_admin.findings.artifacts import (
    BLOCKING,
    OVERLAP,
    PROXIED_PATH,
    RESERVED_COLLISION,
    RESERVED_SQUATTING,
    WARNING,
    WORKSPACE_ROOT_OVERLAP,
    find_artifact_findings,
    normalize_location,
)

from .helpers import migrate, populate

ROOT = "s3://mlflow-root/"

# --- normalization -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b",
    [
        ("file:///a/b", "/a/b"),
        ("file:/a/b", "/a/b/"),
        ("file://localhost/a/b", "/a//b"),
        ("file:///a/b%20c", "/a/b c"),
        ("/a/./b/../b", "/a/b"),
        ("s3://Bucket.example/x/", "s3://bucket.example/x"),
        ("S3://b/x", "s3://b/x"),
        ("s3://b/x?versionId=1", "s3://b/x"),
        ("http://user:secret@host/x", "http://user@host/x"),
        ("C:\\runs\\1", "c:/runs/1"),
    ],
)
def test_equivalent_locations_normalize_equal(a: str, b: str) -> None:
    assert normalize_location(a) == normalize_location(b)


@pytest.mark.parametrize(
    "a, b",
    [
        ("/a/b", "/a/bc"),  # a prefix of the text, not of the path
        ("s3://b1/x", "s3://b2/x"),
        ("s3://b/x", "gs://b/x"),
        ("mlruns/1", "/mlruns/1"),  # relative vs absolute
        ("wasbs://c1@acct.blob.core.windows.net/x", "wasbs://c2@acct.blob.core.windows.net/x"),
        ("file://server/share/x", "/share/x"),
    ],
)
def test_different_locations_do_not_contain_each_other(a: str, b: str) -> None:
    la, lb = normalize_location(a), normalize_location(b)
    assert la is not None and lb is not None
    assert not la.contains(lb) and not lb.contains(la)


def test_empty_location_is_skipped_and_passwords_never_reach_a_key() -> None:
    assert normalize_location("  ") is None
    assert "secret" not in str(normalize_location("http://u:secret@host/p"))
    assert artifacts.display_location("http://u:secret@host/p") == "http://u:***@host/p"


_URLISH = st.text(alphabet="aZ09:/.?#%@[]-+_ \t\\", max_size=24)
_SHAPED = st.tuples(
    st.sampled_from(["s3", "S3", "gs", "file", "mlflow-artifacts", "x+y.z", "1s", ""]),
    st.sampled_from(["://", ":/", ":", ":///", "//"]),
    st.sampled_from(["", "Bkt", "u:p@host", "host:9000", "[::1]", "h?q", "localhost"]),
    st.lists(st.sampled_from(["a", ".", "..", "", "b c", "%41", "x?y", "z#f", "a\tb"]), max_size=4),
).map(lambda t: t[0] + t[1] + t[2] + "/" + "/".join(t[3]))


@settings(max_examples=600, deadline=None)
@given(_URLISH | _SHAPED | st.text(max_size=12))
def test_fast_paths_agree_with_the_general_parser(raw: str) -> None:
    text = raw.strip()
    if not text or artifacts._WINDOWS_DRIVE.match(text):
        return
    assert normalize_location(raw) == artifacts._parse_url(text)


_LEAF = st.text(alphabet="aZ09-_.:/?#%@[] ", min_size=0, max_size=6)


@settings(max_examples=600, deadline=None)
@given(st.lists(st.tuples(_URLISH | _SHAPED | st.text(max_size=12), _LEAF), min_size=1, max_size=4))
def test_the_per_parent_reader_reads_as_the_parser_does(pairs: list[tuple[str, str]]) -> None:
    # One reader for several locations, as the finder uses it: a parent learned once serves the later ones.
    read = artifacts._LocationReader()
    for parent, leaf in pairs:
        for raw in (f"{parent}/{leaf}", parent, f"{parent}/{leaf}"):
            location = normalize_location(raw)
            assert read(raw) == (None if location is None else (location, artifacts._sort_key(location))), raw


def test_a_location_no_url_parser_accepts_is_a_literal_path() -> None:
    # urlsplit refuses an unclosed IPv6 bracket; such a location must not stop the run.
    assert normalize_location("s3://[oops/x") == artifacts.Location("", "", ("s3:", "[oops", "x"))
    assert normalize_location("//[") == normalize_location("/[") == artifacts.Location("file", "", ("[",))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", ".", "..", "", "b.c", "..d"]), max_size=6).map("/".join))
def test_segment_fast_path_agrees_with_normpath(path: str) -> None:
    assert artifacts._segments(path) == artifacts._normpath_segments(path)


# --- the single-pass finder ----------------------------------------------------------------------------------

# NUL and \x01 inside a segment exercise the escaping of the finder's string sort keys.
_SEGMENT = st.sampled_from(["a", "b", "ab", "a-b", "a.b", "a\x00", "a\x01b", "\x00", ".."])
_LOCATION = st.tuples(
    st.sampled_from(["s3://bkt", "s3://other", "S3://Bkt", "file://", "mlflow-artifacts:", ""]),
    st.lists(_SEGMENT, max_size=4),
    st.booleans(),
).map(lambda t: t[0] + "/" + "/".join(t[1]) + ("/" if t[2] else ""))


def _brute_force(rows: list[tuple[int, str, str]]) -> dict[int, bool]:
    """experiment -> crosses workspaces, for every experiment equal to or inside an earlier-sorted one (O(n²))."""
    keyed = [(normalize_location(loc), exp_id, ws) for exp_id, ws, loc in rows]
    order = sorted(keyed, key=lambda k: (k[0], k[1]))
    result = {}
    for i, (key, exp_id, ws) in enumerate(order):
        partners = [o for o in order[:i] if o[0].contains(key)]
        if partners:
            result[exp_id] = any(p[2] != ws for p in partners)
    return result


# spill_after=2: past two items the finder keeps sorted runs in a temporary file; None: always in memory.
@pytest.mark.parametrize("spill_after", [None, 2])
@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["default", "team-a", "team-b"]), _LOCATION), max_size=25))
def test_single_pass_matches_all_pairs(spill_after: int | None, rows: list[tuple[str, str]]) -> None:
    numbered = [(i + 1, ws, loc) for i, (ws, loc) in enumerate(rows)]
    findings = [f for f in find_artifact_findings(numbered, spill_after=spill_after) if f.kind == OVERLAP]
    got = {f.experiment_id: f.blocking for f in findings}
    assert got == _brute_force(numbered)
    by_id = {exp_id: (ws, normalize_location(loc)) for exp_id, ws, loc in numbered}
    for f in findings:  # the named partner really encloses the experiment, across workspaces when blocking
        ws, key = by_id[f.experiment_id]
        other_ws, other_key = by_id[f.other_experiment_id]
        assert other_key.contains(key)
        assert (other_ws != ws) == f.blocking


# Segments whose UTF-16 order differs from their code point order (U+E000 vs U+1F600), NUL and \x01
# separators, and the reserved layout, so every kind and every tie shows up on both sides.
_SPILL_SEGMENT = st.sampled_from(["a", "ab", "a\x00", "\x01", "\ue000", "\U0001f600", "workspaces", "team-a", "7"])
_SPILL_LOCATION = st.tuples(
    st.sampled_from(["s3://r", "s3://R/", "mlflow-artifacts:", "/abs", "rel"]),
    st.lists(_SPILL_SEGMENT, max_size=3),
).map(lambda t: t[0] + "/" + "/".join(t[1]))
_SPILL_ID = st.integers(min_value=1, max_value=9) | st.sampled_from(["7", "x", "\ue000"])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(_SPILL_ID, st.sampled_from(["default", "team-a", "team-b"]), _SPILL_LOCATION | st.none()),
        max_size=30,
    ),
    st.lists(st.tuples(st.sampled_from(["w1", "w2"]), _SPILL_LOCATION), max_size=3),
)
# Found by a run: one id in two workspaces, claimed as ROOT/<id> (the spilled runs return the owners reordered).
@example(
    rows=[
        (1, "default", "s3://r/"),
        ("\ue000", "team-a", "s3://r/a"),
        ("\ue000", "default", "s3://r/"),
        (1, "default", "s3://r/\ue000"),
    ],
    roots=[],
)
def test_spilled_finder_gives_exactly_the_in_memory_findings(
    rows: list[tuple[object, str, str | None]], roots: list[tuple[str, str]]
) -> None:
    in_memory = find_artifact_findings(rows, roots, "s3://r", spill_after=None)
    for spill_after in (0, 1, 5):
        assert find_artifact_findings(rows, roots, "s3://r", spill_after=spill_after) == in_memory


_OWN_WORKSPACES = ["default", "team-a", "team-b", "a b", "a/b", "."]
_OWN_SUFFIX = st.sampled_from(["", "/", "/x", "/x/y", "/../x"])


@st.composite
def _own_layout_rows(draw: st.DrawFn) -> list[tuple[object, str | None, str | None]]:
    """Experiments mostly in their own default place ROOT/workspaces/<ws>/<id>, among locations at, above,
    beside and inside those places (another id, another workspace, the workspace directory, the reserved
    tree, ROOT/<n>), each with a distinct id as in a database."""
    rows: list[tuple[object, str | None, str | None]] = []
    count = draw(st.integers(min_value=0, max_value=25))
    for exp_id in draw(st.permutations(range(1, count + 1))):
        ws = draw(st.sampled_from([*_OWN_WORKSPACES, None]))
        other_ws = draw(st.sampled_from(_OWN_WORKSPACES))
        other_id = draw(st.integers(min_value=1, max_value=count + 1))
        root = draw(st.sampled_from(["s3://r", "s3://R", "s3://r/"]))
        location = draw(
            st.sampled_from(
                [
                    f"s3://r/workspaces/{ws}/{exp_id}",
                    f"s3://r/workspaces/{ws}/{exp_id}",
                    f"{root}/workspaces/{ws}/{exp_id}",
                    f"s3://r/workspaces/{other_ws}/{other_id}",
                    f"s3://r/workspaces/{ws}/{other_id}",
                    f"s3://r/workspaces/{other_ws}",
                    f"{root}/workspaces",
                    root,
                    f"s3://r/{other_id}",
                    f"s3://other/workspaces/{ws}/{exp_id}",
                    None,
                ]
            )
        )
        if location is not None:
            location += draw(_OWN_SUFFIX)
        rows.append((exp_id, ws, location))
    return rows


@settings(max_examples=400, deadline=None)
@given(_own_layout_rows(), st.sampled_from(["s3://r", "s3://r/", "mlflow-artifacts:/r"]))
def test_experiments_in_their_own_default_place_give_exactly_the_full_check(rows, root: str) -> None:
    # Experiments kept aside as bare ids (artifacts._OwnLayout) must change no finding, none's order.
    if root.startswith("mlflow-artifacts"):
        rows = [(i, ws, loc.replace("s3://r", "mlflow-artifacts:/r", 1) if loc else loc) for i, ws, loc in rows]
    roots = [("team-a", "s3://r/workspaces")]
    fast = [find_artifact_findings(rows, roots, root, spill_after=n, unique_ids=True) for n in (None, 3, 0)]
    full = find_artifact_findings(rows, roots, root, spill_after=None)
    assert fast == [full, full, full]


_ID_PARENTS = [
    "s3://r",
    "s3://R/",
    "s3://r/x",
    "s3://r/x/",
    "s3://r/workspaces/team-a",
    "s3://r/workspaces",
    "mlflow-artifacts:",
    "mlflow-artifacts:/workspaces",
    "mlflow-artifacts:/workspaces/team-a",
    "mlflow-artifacts:/workspaces/default",
    "mlflow-artifacts:/legacy",
    "/abs/dir",
    "rel",
    "file:///abs/dir",
    "s3://r/x?v=1",
]


@st.composite
def _id_layout_rows(draw: st.DrawFn) -> list[tuple[object, str | None, str | None]]:
    """Experiments mostly at `<parent>/<own id>` under many parents (proxied, reserved, nested in another
    experiment's place, spelled twice), among locations at, above and inside those places; distinct ids."""
    rows: list[tuple[object, str | None, str | None]] = []
    count = draw(st.integers(min_value=0, max_value=25))
    for exp_id in draw(st.permutations(range(1, count + 1))):
        ws = draw(st.sampled_from([*_OWN_WORKSPACES, None]))
        parent = draw(st.sampled_from(_ID_PARENTS))
        other_id = draw(st.integers(min_value=1, max_value=count + 1))
        location = draw(
            st.sampled_from(
                [
                    f"{parent}/{exp_id}",
                    f"{parent}/{exp_id}",
                    f"{parent}/{other_id}",
                    f"{parent}/{other_id}/{exp_id}",
                    f"{parent}/{exp_id}/x",
                    parent,
                    f"s3://r/x/{other_id}/{exp_id}",
                    None,
                ]
            )
        )
        rows.append((exp_id, ws, location))
    return rows


@settings(max_examples=300, deadline=None)
@given(
    _id_layout_rows(),
    st.sampled_from([None, "s3://r", "mlflow-artifacts:/", "s3://r/x"]),
    st.sampled_from([("default", True), ("team-a", False), ("default", False)]),
)
def test_experiments_at_their_parent_and_own_id_give_exactly_the_full_check(rows, root, move) -> None:
    # Experiments kept aside as bare ids (artifacts._IdLayout) must change no finding, none's order.
    target, migration = move
    roots = [("team-a", "s3://r/workspaces")]
    options = {"target_workspace": target, "migration": migration}
    full = find_artifact_findings(rows, roots, root, spill_after=None, **options)
    for spill_after in (None, 3, 0):
        assert find_artifact_findings(rows, roots, root, spill_after=spill_after, unique_ids=True, **options) == full


def test_experiments_in_their_own_default_place_are_kept_aside() -> None:
    rows = [(i, f"team-{i % 3}", f"s3://r/workspaces/team-{i % 3}/{i}") for i in range(1, 1001)]
    rows += [(2000, "team-1", "s3://r/workspaces/team-1/7/inside"), (2001, "team-1", "s3://r/workspaces/team-2/4")]
    read = artifacts._LocationReader()
    own = artifacts._IdLayout(read, normalize_location("s3://r/workspaces"), "default", True)
    assert sum(own.take(*row) for row in rows) == 1000
    others = [artifacts._Item(read(loc)[1], i, ws, loc) for i, ws, loc in rows[1000:]]
    own.find_overlaps(sorted(others))
    assert [item.ident for item in own.promoted()] == [7]  # only the one another location sits inside

    findings = find_artifact_findings(rows, [], "s3://r", unique_ids=True)
    assert findings == find_artifact_findings(rows, [], "s3://r")
    assert [(f.kind, f.experiment_id, f.other_experiment_id) for f in findings] == [
        (OVERLAP, 2000, 7),
        (RESERVED_SQUATTING, 2001, None),
    ]


def test_spill_file_lives_only_while_the_finder_runs(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(artifacts.tempfile, "tempdir", str(tmp_path))
    seen: list[list[str]] = []

    def rows():
        for i in range(1, 8):
            seen.append(sorted(p.name for p in tmp_path.iterdir()))
            yield (i, "team-a", f"s3://b/{i % 3}")

    findings = find_artifact_findings(rows(), spill_after=3)

    assert seen[0] == [] and seen[-1] != []  # spilled once past 3 items...
    assert list(tmp_path.iterdir()) == []  # ...and removed afterwards
    assert [(f.experiment_id, f.other_experiment_id) for f in findings] == [(6, 3), (4, 1), (7, 4), (5, 2)]


def test_overlap_in_100k_experiments_is_found() -> None:
    rng = random.Random(7)
    workspaces = ["default", "team-a", "team-b", "team-c"]
    rows = [(i, rng.choice(workspaces), f"s3://bkt/{i % 97}/runs-{i}/") for i in range(1, 100_001)]
    rows.append((100_001, "team-b", "s3://bkt/5/runs-5"))  # same place as experiment 5, another workspace
    rows.append((100_002, rows[41][1], "s3://bkt/42/runs-42/artifacts"))  # inside 42, same workspace
    rng.shuffle(rows)
    rows[0:0] = [(0, "team-a", None)]  # NULL locations are skipped

    findings = find_artifact_findings(rows)

    ws_of_5 = next(ws for i, ws, _ in rows if i == 5)
    assert sorted((f.experiment_id, f.other_experiment_id, f.severity) for f in findings) == [
        (100_001, 5, BLOCKING if ws_of_5 != "team-b" else WARNING),
        (100_002, 42, WARNING),
    ]


# --- every kind through the CLI, on every backend -----------------------------------------------------------


def _plant(db, fill) -> dict[str, int]:
    ids: dict[str, int] = {}
    populate(db, lambda data: fill(data, ids))
    return ids


def _dry_run(db, *flags: str):
    before = db.fingerprint()
    result = migrate(db.uri, "--dry-run", *flags)
    assert db.fingerprint() == before
    return result


def test_overlap_across_workspaces_blocks(mlflow_db) -> None:
    def fill(data, ids) -> None:
        ids["a"] = data.experiment("team-a", "a", artifact_location="s3://bkt/shared/")
        ids["b"] = data.experiment("team-b", "b", artifact_location="s3://bkt/shared")

    ids = _plant(mlflow_db, fill)
    result = _dry_run(mlflow_db)

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    assert (
        f'blocking: experiment {ids["b"]} (team-b) "s3://bkt/shared": the same location as experiment {ids["a"]} '
        '(workspace "team-a")' in result.stdout
    )
    assert "Blocked: 1 blocking artifact finding(s) (or --allow-artifact-overlap)" in result.stdout

    allowed = _dry_run(mlflow_db, "--allow-artifact-overlap")
    assert allowed.exit_code == ExitStatus.OK, allowed.output
    assert "1 blocking artifact finding(s) allowed by --allow-artifact-overlap" in allowed.stdout


def test_overlap_within_one_workspace_warns(mlflow_db) -> None:
    def fill(data, ids) -> None:
        ids["outer"] = data.experiment("team-a", "outer", artifact_location="file:///data/mlruns/7")
        ids["inner"] = data.experiment("team-a", "inner", artifact_location="/data/mlruns/7/nested/")
        data.experiment("team-a", "sibling", artifact_location="/data/mlruns/77")  # not a prefix of /data/mlruns/7

    ids = _plant(mlflow_db, fill)
    result = _dry_run(mlflow_db)

    assert result.exit_code == ExitStatus.OK, result.output
    assert f'warning: experiment {ids["inner"]} (team-a) "/data/mlruns/7/nested/": inside the location of' in (
        result.stdout
    )
    assert "overlap — experiments whose artifact locations are equal or nested" in result.stdout
    assert ": 1 finding(s)" in result.stdout
    assert "(1 artifact warning(s))" in result.stdout


def test_reserved_path_collision_blocks(mlflow_db) -> None:
    def fill(data, ids) -> None:
        ids["owner"] = data.experiment("team-a", "owner", artifact_location="s3://elsewhere/x")
        ids["squat"] = data.experiment("default", "squat", artifact_location=f"s3://mlflow-root/{1_000_000 + 1}")

    ids = _plant(mlflow_db, fill)
    # the spread's first experiment got id 1000001; its location is NULL
    owner_of_1000001 = mlflow_db.scalar("SELECT workspace FROM experiments WHERE experiment_id = 1000001")
    result = _dry_run(mlflow_db, "--default-artifact-root", ROOT)

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    assert (
        f'blocking: experiment {ids["squat"]} (default) "s3://mlflow-root/1000001": is s3://mlflow-root/1000001, '
        f'the default artifact location of experiment 1000001 (workspace "{owner_of_1000001}")' in result.stdout
    )
    # without the root the reserved-path kinds are not computed, and say so
    plain = _dry_run(mlflow_db)
    assert plain.exit_code == ExitStatus.OK, plain.output
    assert "No --default-artifact-root given" in plain.stdout
    assert "reserved-path-collision" not in plain.stdout


def test_reserved_path_squatting_warns(mlflow_db) -> None:
    def fill(data, ids) -> None:
        ids["squat"] = data.experiment("default", "squat", artifact_location="s3://mlflow-root/workspaces/team-a/9")
        ids["own"] = data.experiment("team-b", "own", artifact_location="s3://mlflow-root/workspaces/team-b/1")

    ids = _plant(mlflow_db, fill)
    result = _dry_run(mlflow_db, "--default-artifact-root", ROOT)

    assert result.exit_code == ExitStatus.OK, result.output
    assert (
        f'warning: experiment {ids["squat"]} (default) "s3://mlflow-root/workspaces/team-a/9": sits under '
        's3://mlflow-root/workspaces/team-a/, reserved for workspace "team-a"' in result.stdout
    )
    assert f"experiment {ids['own']} " not in result.stdout  # its own workspace's layout


def test_proxied_paths_warn(mlflow_db) -> None:
    def fill(data, ids) -> None:
        ids["p"] = data.experiment("team-a", "p", artifact_location="mlflow-artifacts:/workspaces/team-a/3")
        data.experiment("default", "legacy", artifact_location="mlflow-artifacts:/5")

    ids = _plant(mlflow_db, fill)
    result = _dry_run(mlflow_db)

    assert result.exit_code == ExitStatus.OK, result.output
    assert f'warning: experiment {ids["p"]} (team-a) "mlflow-artifacts:/workspaces/team-a/3": proxied path' in (
        result.stdout
    )
    assert "proxied-path — " in result.stdout and ": 1 finding(s)" in result.stdout
    assert "disable workspaces after the migration" in result.stdout


def test_workspace_root_overlap_warns(mlflow_db) -> None:
    def fill(data, ids) -> None:
        data.workspace("team-d", default_artifact_root="s3://team-roots/d")
        data.workspace("team-e", default_artifact_root="s3://team-roots/d/e/")
        data.workspace("team-f", default_artifact_root="s3://mlflow-root/workspaces/f")

    _plant(mlflow_db, fill)
    result = _dry_run(mlflow_db, "--default-artifact-root", ROOT)

    assert result.exit_code == ExitStatus.OK, result.output
    out = result.stdout
    assert 'workspace "team-e" "s3://team-roots/d/e/": workspace "team-e"\'s default_artifact_root overlaps ' in out
    assert 'workspace "team-d"\'s root' in out
    assert "overlaps the reserved s3://mlflow-root/workspaces/ tree" in out
    assert "workspace-root-overlap — " in out and ": 2 finding(s)" in out


def test_findings_are_truncated_unless_verbose(mlflow_db) -> None:
    def fill(data, ids) -> None:
        for i in range(7):
            data.experiment("team-a", f"a{i}", artifact_location=f"s3://bkt/{i}")
            data.experiment("team-b", f"b{i}", artifact_location=f"s3://bkt/{i}")

    _plant(mlflow_db, fill)
    short = _dry_run(mlflow_db)
    full = _dry_run(mlflow_db, "--verbose")

    assert short.exit_code == full.exit_code == ExitStatus.CONFLICTS
    assert short.stdout.count("blocking: experiment") == 5
    assert "... 2 more (use --verbose to list all)" in short.stdout
    assert full.stdout.count("blocking: experiment") == 7
    assert "more (use --verbose" not in full.stdout


def test_locations_print_literally_and_without_passwords(mlflow_db) -> None:
    def fill(data, ids) -> None:
        data.experiment("team-a", "x", artifact_location="http://bob:hunter2@store/[red]x")
        data.experiment("team-b", "y", artifact_location="http://bob:hunter2@store/[red]x/")

    _plant(mlflow_db, fill)
    result = _dry_run(mlflow_db)

    assert result.exit_code == ExitStatus.CONFLICTS
    assert '"http://bob:***@store/[red]x/"' in result.stdout
    assert "hunter2" not in result.output


def test_apply_is_blocked_by_artifact_findings_unless_allowed(mlflow_db) -> None:
    def fill(data, ids) -> None:
        ids["a"] = data.experiment("team-a", "a", artifact_location="/shared")
        ids["b"] = data.experiment("team-b", "b", artifact_location="/shared/sub")

    ids = _plant(mlflow_db, fill)
    finding = f'blocking: experiment {ids["b"]} (team-b) "/shared/sub": inside the location of experiment {ids["a"]}'
    before = mlflow_db.fingerprint()

    # -y checks the locations under the lock while the rows move, then reports them as a dry run would.
    blocked = migrate(mlflow_db.uri, "-y")
    assert blocked.exit_code == ExitStatus.CONFLICTS, blocked.output
    assert "Error: 1 blocking artifact finding(s) under the lock, rolled back, nothing changed" in blocked.stderr
    assert finding in blocked.stdout
    assert "Blocked: 1 blocking artifact finding(s)" in blocked.stdout
    assert mlflow_db.fingerprint() == before

    applied = migrate(mlflow_db.uri, "-y", "--allow-artifact-overlap")
    assert applied.exit_code == ExitStatus.OK, applied.output
    after_move = applied.stdout[applied.stdout.index("Artifact findings: 1 blocking") :]
    assert finding in after_move and "Done: moved" in after_move
    assert mlflow_db.outside_default("experiments") == 0


def test_empty_artifact_root_is_a_usage_error(mlflow_db) -> None:
    before = mlflow_db.fingerprint()
    result = migrate(mlflow_db.uri, "--dry-run", "--default-artifact-root", " ")
    assert result.exit_code == ExitStatus.USAGE
    assert "Error: --default-artifact-root must not be empty" in result.stderr
    assert mlflow_db.fingerprint() == before


def test_database_read_at_moderate_scale(mlflow_db) -> None:
    """The streamed DB read feeds the finder on every backend: 3,000 experiments, one planted overlap."""

    def fill(data, ids) -> None:
        for i in range(3000):
            data.experiment(("team-a", "team-b", "default")[i % 3], f"bulk-{i}", artifact_location=f"gs://b/{i}/")
        ids["dup"] = data.experiment("team-c", "dup", artifact_location="gs://b/1500/sub")
        data.experiment("team-c", "no-location")

    ids = _plant(mlflow_db, fill)
    with mlflow_db.engine.connect() as conn:
        findings = artifact_scan.read_artifact_findings(conn, reflect_schema(conn), None)
        dup_parent = conn.execute(
            text("SELECT experiment_id FROM experiments WHERE artifact_location = 'gs://b/1500/'")
        ).scalar_one()

    assert [(f.kind, f.experiment_id, f.other_experiment_id, f.severity) for f in findings] == [
        (OVERLAP, ids["dup"], dup_parent, BLOCKING)
    ]


def test_kinds_are_reported_in_order_with_their_severity() -> None:
    rows = [
        (1, "team-a", "s3://r/workspaces/team-b/1"),
        (2, "team-a", "s3://r/3"),
        (3, "team-a", "s3://x/3"),
        (4, "team-a", "mlflow-artifacts:/workspaces/team-a/4"),
        (5, "team-b", "s3://x/3/"),
    ]
    findings = find_artifact_findings(rows, [("w1", "s3://z"), ("w2", "s3://z/")], "s3://r")
    assert [(f.kind, f.severity, f.experiment_id) for f in findings] == [
        (OVERLAP, BLOCKING, 5),
        (RESERVED_COLLISION, BLOCKING, 2),
        (RESERVED_SQUATTING, WARNING, 1),
        (PROXIED_PATH, WARNING, 4),
        (WORKSPACE_ROOT_OVERLAP, WARNING, None),
    ]


def test_proxied_paths_are_read_as_mlflow_3_18_s_proxy_reads_them() -> None:
    """The proxy's reserved prefix is the path's first segment in any case (`WORKSPACES/`, as 3.18.0's
    handlers.py compares it); the workspace name after it is compared exactly; deeper `workspaces` segments are
    not the prefix."""
    rows = [
        (1, "team-a", "mlflow-artifacts:/WORKSPACES/team-a/1"),
        (2, "team-a", "mlflow-artifacts:/Workspaces/team-a/2"),
        (3, "team-a", "mlflow-artifacts:/workspaces/default/3"),  # already the target's own: readable
        (4, "team-a", "mlflow-artifacts:/x/workspaces/team-a/4"),  # not the prefix
        (5, "team-a", "mlflow-artifacts:/workspaces/DEFAULT/5"),  # the name is compared exactly
        (6, "team-a", "s3://bucket/WORKSPACES/team-a/6"),  # not proxied
    ]
    findings = find_artifact_findings(rows, [], None)
    assert [(f.kind, f.experiment_id) for f in findings] == [(PROXIED_PATH, 1), (PROXIED_PATH, 2), (PROXIED_PATH, 5)]
    assert "proxied path under workspaces/team-a/" in findings[0].detail
