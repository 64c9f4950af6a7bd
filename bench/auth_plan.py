"""The auth migration's plan (translation + the before/after comparison) on synthetic rows, in memory:
``python bench/auth_plan.py WORKSPACES EXPERIMENTS_PER_WS MODELS_PER_WS USERS``."""

import sys
import time

from mlflow_ws_admin.auth.plan import build_auth_plan
from mlflow_ws_admin.auth.rules import AuthConfig, Grant
from mlflow_ws_admin.auth.state import AuthState, Ownership, Resource, Role, User
from mlflow_ws_admin.engine.rename_template import RenameTemplate

W, E, M, U = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
wss = ["default"] + [f"team-{i}" for i in range(W - 1)]
res = []
n = 0
for w in wss:
    for _ in range(E):
        n += 1
        res.append(Resource("experiment", w, str(n), str(n)))
    for m in range(M):
        for t in ("registered_model", "prompt"):
            res.append(Resource(t, w, f"{w}-m{m}", f"{w}-m{m}"))
own = Ownership(tuple(res), "bench")
roles, grants, assign = [], {}, set()
rid = 0
for w in wss:
    for name, gs in (
        ("viewer", [("experiment", "*", "READ"), ("registered_model", "*", "READ")]),
        ("editor", [("experiment", "*", "EDIT")]),
        ("one", [("experiment", str(wss.index(w) * E + 1), "MANAGE")]),
    ):
        rid += 1
        roles.append(Role(rid, name, w, None))
        grants[rid] = frozenset(Grant(*g) for g in gs)
users = tuple(User(i + 1, f"u{i}", False) for i in range(U))
for u in users:
    assign.add((u.id, 1 + (u.id % len(roles))))
    assign.add((u.id, 1 + ((u.id * 7) % len(roles))))
state = AuthState(users, tuple(roles), grants, frozenset(assign))
t, cpu = time.perf_counter(), time.process_time()
plan = build_auth_plan(state, own, AuthConfig(), template=RenameTemplate.parse("{name} ({workspace})"))
print(
    f"{W} ws, {len(res)} resources, {U} users: plan {time.perf_counter() - t:.2f}s ({time.process_time() - cpu:.2f}s CPU), compared {plan.compared}, changes {len(plan.changes)}, unaccepted {len(plan.unaccepted)}"
)
