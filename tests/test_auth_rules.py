"""Our model of MLflow 3.17.2's permission rules, as pure functions (the differential test checks it against
MLflow itself; these pin each rule on its own)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlflow_ws_admin.auth.plan import build_auth_plan
from mlflow_ws_admin.auth.rules import AuthConfig, Grant, GrantIndex, fold, resource_permission, tier_permission
from mlflow_ws_admin.auth.state import AuthState, Ownership, Resource, Role, User
from mlflow_ws_admin.engine.rename_template import RenameTemplate

READ_DEFAULT = AuthConfig("READ")


def _perm(grants, rtype="experiment", rid="1", *, config=READ_DEFAULT, enabled=True, workspace="team-a") -> str:
    return resource_permission(
        GrantIndex.of(Grant(*g) for g in grants),
        rtype,
        rid,
        config=config,
        workspaces_enabled=enabled,
        workspace=workspace,
    )


def test_deny_wins_over_any_grant_of_the_key() -> None:
    assert fold([Grant("experiment", "*", "MANAGE"), Grant("experiment", "1", "DENY")], "experiment", "1") == "DENY"
    assert _perm([("experiment", "*", "MANAGE"), ("experiment", "1", "DENY")]) == "DENY"


def test_workspace_admin_beats_deny() -> None:
    assert _perm([("workspace", "*", "MANAGE"), ("experiment", "1", "DENY")]) == "MANAGE"


def test_workspace_use_grants_nothing_on_a_resource() -> None:
    assert _perm([("workspace", "*", "USE")]) == "NO_PERMISSIONS"


def test_positive_grants_floor_at_default_permission_but_deny_does_not() -> None:
    edit = AuthConfig("EDIT")
    assert _perm([("experiment", "1", "READ")], config=edit) == "EDIT"
    assert _perm([("experiment", "1", "DENY")], config=edit) == "DENY"


def test_absent_grant_is_no_permissions_with_workspaces_and_default_without() -> None:
    assert _perm([]) == "NO_PERMISSIONS"
    assert _perm([], enabled=False, workspace="default") == "READ"
    gdwa = AuthConfig("READ", grant_default_workspace_access=True)
    assert _perm([], config=gdwa, workspace="default") == "READ"
    assert _perm([], config=gdwa, workspace="team-a") == "NO_PERMISSIONS"


def test_per_id_pattern_only_for_per_id_types() -> None:
    assert _perm([("experiment", "2", "EDIT")]) == "NO_PERMISSIONS"
    assert fold([Grant("run", "1", "EDIT")], "run", "1") is None  # runs take only "*"
    assert tier_permission(GrantIndex.of([Grant("run", "*", "READ")]), "run", config=AuthConfig("EDIT")) == "EDIT"
    assert tier_permission(GrantIndex(), "run", config=READ_DEFAULT) is None


def _state(roles, members, users=("alice", "bob")) -> AuthState:
    us = tuple(User(i + 1, name, False) for i, name in enumerate(users))
    ids = {name: i + 1 for i, name in enumerate(users)}
    rs = tuple(Role(i + 1, name, ws, None) for i, (ws, name) in enumerate(roles))
    rid = {(r.workspace, r.name): r.id for r in rs}
    grants = {rid[k]: frozenset(Grant(*g) for g in gs) for k, gs in roles.items()}
    assignments = frozenset((ids[u], rid[k]) for u, ks in members.items() for k in ks)
    return AuthState(us, rs, grants, assignments)


OWNED = Ownership(
    (
        Resource("experiment", "default", "1", "1"),
        Resource("experiment", "team-a", "2", "2"),
        Resource("experiment", "team-b", "3", "3"),
    ),
    "test",
)


def test_a_wildcard_becomes_per_id_grants_on_its_workspace_s_resources_only() -> None:
    state = _state({("team-a", "viewer"): [("experiment", "*", "READ")]}, {"alice": [("team-a", "viewer")]})
    plan = build_auth_plan(state, OWNED, READ_DEFAULT)
    assert [r.grants for r in plan.roles] == [frozenset({Grant("experiment", "2", "READ")})]
    assert plan.changes == ()


def test_a_grant_below_default_permission_is_raised_to_it() -> None:
    state = _state({("team-a", "viewer"): [("experiment", "2", "READ")]}, {"alice": [("team-a", "viewer")]})
    plan = build_auth_plan(state, OWNED, AuthConfig("EDIT"))
    assert plan.roles[0].grants == frozenset({Grant("experiment", "2", "EDIT")})
    assert plan.changes == ()


def test_grant_default_workspace_access_becomes_a_role_for_every_user() -> None:
    state = _state({("team-a", "viewer"): [("experiment", "*", "READ")]}, {"alice": [("team-a", "viewer")]})
    plan = build_auth_plan(state, OWNED, AuthConfig("READ", grant_default_workspace_access=True))
    extra = next(r for r in plan.roles if r.keep_id is None)
    assert extra.name == "default-workspace-access"
    assert extra.grants == frozenset({Grant("experiment", "1", "READ")})
    assert extra.members == frozenset({1, 2})
    assert plan.changes == ()


RUNNERS = {
    ("team-a", "runners"): [("run", "*", "READ"), ("experiment", "*", "EDIT")],
    ("team-b", "editors"): [("experiment", "*", "EDIT")],
}


@pytest.mark.parametrize(
    ("flag", "resolution", "accepted", "subject", "gained", "lost"),
    [
        # shown, pending a choice: what --drop would do (team-a's runs then follow the experiment's EDIT)
        ({}, "blocking", "blocked: what --drop would do", "every run of experiment 2 (team-a)", ("use", "update"), ()),
        # kept server-wide, the READ tier now also decides team-b's runs
        ({"widen": True}, "widened", "--widen", "every run of experiment 3 (team-b)", (), ("use", "update")),
        # dropped: team-a's runs follow the experiment's EDIT, a gain --drop cannot accept
        ({"drop": True}, "dropped", None, "every run of experiment 2 (team-a)", ("use", "update"), ()),
    ],
)
def test_a_tier_grant_of_one_workspace_among_several_is_a_finding(
    flag, resolution, accepted, subject, gained, lost
) -> None:
    state = _state(RUNNERS, {"alice": [("team-a", "runners"), ("team-b", "editors")]})
    plan = build_auth_plan(state, OWNED, READ_DEFAULT, **flag)
    assert [(f.kind, f.resolution, f.users) for f in plan.findings] == [("wildcard-only", resolution, ("alice",))]
    assert [(c.subject, c.before, c.after, c.accepted_by, c.gained, c.lost) for c in plan.changes] == [
        (subject, "READ" if gained else "EDIT", "EDIT" if gained else "READ", accepted, gained, lost)
    ]
    assert plan.unaccepted == ()
    assert plan.unaccepted_gains == (plan.changes if accepted is None else ())


def test_a_tier_grant_without_read_on_the_experiment_changes_nothing() -> None:
    """Every run operation also requires read on the experiment: a run grant alone gives nothing."""
    state = _state({("team-a", "runners"): [("run", "*", "EDIT")]}, {"alice": [("team-a", "runners")]})
    assert build_auth_plan(state, OWNED, READ_DEFAULT, drop=True).changes == ()


def test_a_scorer_wildcard_decides_the_experiment_s_delete() -> None:
    """Deleting an experiment needs delete on its scorers' key (scorer, *) too: narrowing a scorer wildcard to
    per-id grants would let the experiment's MANAGE delete it."""
    owned = Ownership((*OWNED.resources, Resource("scorer", "team-b", "3/s", "3/s")), "test")
    roles = {("team-a", "ops"): [("experiment", "*", "MANAGE"), ("scorer", "*", "READ")]}
    plan = build_auth_plan(_state(roles, {"alice": [("team-a", "ops")]}), owned, READ_DEFAULT)
    assert [(c.subject, c.gained) for c in plan.changes] == [("experiment 2 (team-a)", ("delete",))]
    assert plan.unaccepted_gains == plan.changes


def test_widen_keeps_a_vetoing_scorer_wildcard_whole_and_drop_still_blocks() -> None:
    """The same grants with --widen: the scorer wildcard stays a wildcard (server-wide, a finding accepted by
    --widen), so the experiment's delete stays vetoed; a READ-only scorer wildcard where nobody could delete an
    experiment is still narrowed.  --drop accepts losses only: the delete it would give still blocks."""
    scorers = (Resource("scorer", "team-a", "2/s", "2/s"), Resource("scorer", "team-b", "3/s", "3/s"))
    owned = Ownership((*OWNED.resources, *scorers), "test")
    roles = {
        ("team-a", "ops"): [("experiment", "*", "MANAGE"), ("scorer", "*", "READ")],
        ("team-b", "viewer"): [("experiment", "*", "READ"), ("scorer", "*", "READ")],
    }
    state = _state(roles, {"alice": [("team-a", "ops")], "bob": [("team-b", "viewer")]})

    widened = build_auth_plan(state, owned, READ_DEFAULT, widen=True)

    assert widened.unaccepted == () and widened.unaccepted_gains == ()
    (kept,) = [f for f in widened.findings if f.grant == Grant("scorer", "*", "READ")]
    assert (kept.workspace, kept.users, kept.resolution) == ("team-a", ("alice",), "widened")
    assert "vetoes deleting its experiments" in kept.detail
    grants = {r.name: r.grants for r in widened.roles}
    assert Grant("scorer", "*", "READ") in grants["ops"]
    assert Grant("scorer", "*", "READ") not in grants["viewer"]  # nobody there could delete: narrowed as before
    # alice now reads team-b's scorer too: a gain, accepted by --widen
    assert [(c.username, c.subject, c.gained, c.accepted_by) for c in widened.changes] == [
        ("alice", "scorer 3/s (team-b)", ("read",), "--widen")
    ]

    dropped = build_auth_plan(state, owned, READ_DEFAULT, drop=True)
    assert [(c.subject, c.gained) for c in dropped.unaccepted_gains] == [("experiment 2 (team-a)", ("delete",))]


def test_a_tier_grant_of_the_only_workspace_stays() -> None:
    only_a = Ownership((Resource("experiment", "team-a", "2", "2"),), "test")
    state = _state({("team-a", "runners"): [("run", "*", "EDIT")]}, {"alice": [("team-a", "runners")]})
    plan = build_auth_plan(state, only_a, READ_DEFAULT)
    assert plan.findings == () and plan.changes == ()
    assert plan.roles[0].grants == frozenset({Grant("run", "*", "EDIT")})


# --- property: the translation keeps every permission our model resolves ---------------------------------------


WORKSPACES = ("default", "team-a", "team-b")
LEVELS_GRANTED = ("READ", "USE", "EDIT", "MANAGE", "DENY")
RESOURCES = Ownership(
    tuple(
        Resource(rtype, ws, f"{rtype[:3]}-{ws}-{i}", f"{rtype[:3]}-{ws}-{i}")
        for rtype in ("experiment", "registered_model", "prompt", "scorer")
        for ws in WORKSPACES
        for i in range(2)
    ),
    "property",
)
_ids = [r.before_id for r in RESOURCES.resources]
_grant = st.tuples(
    st.sampled_from(("experiment", "registered_model", "prompt", "scorer")),
    st.sampled_from(["*", *_ids]),
    st.sampled_from(LEVELS_GRANTED),
)
_tier = st.tuples(
    st.sampled_from(("run", "trace", "workspace")), st.just("*"), st.sampled_from(("USE", "MANAGE", "READ"))
)


@settings(max_examples=150, deadline=None)
@given(
    roles=st.dictionaries(
        st.tuples(st.sampled_from(WORKSPACES), st.sampled_from(("viewer", "ops", "x"))),
        st.lists(_grant, max_size=4),
        max_size=6,
    ),
    tiers=st.lists(_tier, max_size=2),
    default_permission=st.sampled_from(("READ", "EDIT", "NO_PERMISSIONS")),
    gdwa=st.booleans(),
    data=st.data(),
)
def test_translation_keeps_every_permission(roles, tiers, default_permission, gdwa, data) -> None:
    if not roles:
        return
    roles = {k: list({(t, p): (t, p, perm) for t, p, perm in v}.values()) for k, v in roles.items()}
    first = next(iter(roles))
    roles[first] = roles[first] + [t for t in tiers if (t[0], t[1]) not in {(g[0], g[1]) for g in roles[first]}]
    members = {
        u: data.draw(st.lists(st.sampled_from(sorted(roles)), max_size=3, unique=True)) for u in ("alice", "bob")
    }
    state = _state(roles, members)
    config = AuthConfig(default_permission, grant_default_workspace_access=gdwa)
    for how in ({"drop": True}, {"widen": True}):
        plan = build_auth_plan(
            state, RESOURCES, config, template=RenameTemplate.parse("{name} ({workspace}) {n}"), **how
        )
        assert plan.unaccepted == (), plan.unaccepted[:3]
        if "widen" in how:
            assert plan.unaccepted_gains == (), plan.unaccepted_gains[:3]
        if not plan.findings:
            # nothing silent: a change without a finding can only be a gain that blocks (a scorer wildcard
            # narrowed to per-id grants no longer vetoes its experiments' delete)
            assert all(c.gained and c.accepted_by is None for c in plan.changes), plan.changes[:3]


def test_per_user_roles_clashing_on_one_key_keep_the_most_restrictive_and_report_it() -> None:
    roles = {
        ("team-a", "__user_1__"): [("run", "*", "EDIT"), ("experiment", "*", "EDIT")],
        ("team-b", "__user_1__"): [("run", "*", "READ"), ("experiment", "*", "EDIT")],
    }
    plan = build_auth_plan(_state(roles, {"alice": list(roles)}), OWNED, READ_DEFAULT, widen=True)
    (role,) = plan.roles
    assert role.name == "__user_1__" and role.keep_id == 1
    assert Grant("run", "*", "READ") in role.grants and Grant("run", "*", "EDIT") not in role.grants
    (clash,) = [f for f in plan.findings if f.kind == "per-user-clash"]
    assert (
        clash.detail
        == "the per-user roles give team-a EDIT, team-b READ on one key: the most restrictive, READ, is kept"
    )
    assert [(c.subject, c.lost, c.accepted_by) for c in plan.changes] == [
        ("every run of experiment 2 (team-a)", ("use", "update"), "per-user merge")
    ]
    assert plan.unaccepted == () and plan.unaccepted_gains == ()
