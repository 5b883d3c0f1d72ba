#!/usr/bin/env python3
"""A bounded flood against a running stack (`rocky-e2e up --state-dir DIR`), printing the peak
RSS (VmHWM) of the process serving the console and worker and of hearth after every round.

    python3 scripts/flood.py DIR [ROUNDS]

Each round: 200 accepted runs of 60 prompts x 900 bytes (each waited to its end), then 200
unauthenticated 200 KB POSTs (refused). Traffic goes only to the stack's loopback console.
Only the standard library is used.
"""
import json
import subprocess
import sys
import urllib.error
import urllib.request

RUNS_PER_ROUND = 200
PROMPTS = 60
PROMPT_BYTES = 900
JUNK_PER_ROUND = 200
JUNK_BYTES = 200 * 1024


def call(base, method, path, token=None, body=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, data=data, method=method)
    if token:
        req.add_header("authorization", "Bearer " + token)
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read()[:200]


def hwm_mb(name):
    pids = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout.split()
    if not pids:
        sys.exit(f"no process named {name}")
    with open(f"/proc/{pids[0]}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main():
    state = json.load(open(sys.argv[1] + "/stack.json"))
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    base, token = state["console_url"], state["admin_token"]
    status, body = call(base, "POST", "/api/hearth/workspaces", token, {"slug": "flood", "tier": "solo"})
    if status != 201:
        sys.exit(f"provision flood: {status} {body}")
    prompts = [f"prompt {i} " + "x" * (PROMPT_BYTES - 12) for i in range(PROMPTS)]
    print("| after | runs kept by the console | console + worker (VmHWM) | hearth (VmHWM) |")
    print("| --- | ---: | ---: | ---: |")
    first = None
    for round_ in range(1, rounds + 1):
        for _ in range(RUNS_PER_ROUND):
            status, body = call(base, "POST", "/api/ralph/runs", token, {"workspace": "flood", "prompts": prompts})
            if status != 202:
                sys.exit(f"submit: {status} {body}")
            run_id = body["run_id"]
            first = first or run_id
            status, view = call(base, "GET", f"/api/ralph/runs/{run_id}?wait=30s", token)
            if status != 200 or view["status"] == "running":
                sys.exit(f"run {run_id}: {status} {view}")
        for _ in range(JUNK_PER_ROUND):
            status, _ = call(base, "POST", "/api/ralph/runs", None, raw=b"x" * JUNK_BYTES)
            if status not in (401, 413):
                sys.exit(f"an unauthenticated 200 KB POST got {status}")
        kept = "first run evicted" if call(base, "GET", f"/api/ralph/runs/{first}", token)[0] == 404 else "all"
        n = round_ * RUNS_PER_ROUND
        print(f"| {n} runs + {n} refused | {kept} | {hwm_mb('rocky-e2e'):.0f} MB | {hwm_mb('hearth'):.0f} MB |", flush=True)


if __name__ == "__main__":
    main()
