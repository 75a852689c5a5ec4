#!/usr/bin/env bash
# `make demo`: the whole loop on the embedded default (local SQLite backend, no cloud needed).
# Uses a throw-away state directory so every run starts from nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PO=.venv/bin/planner-operator
export PLANNER_STATE_DIR=.planner/demo
rm -rf "$PLANNER_STATE_DIR"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. validate agents/ (schema, cron, timezones, templates)"
$PO validate agents

step "2. next runs of every job (DST-affected fires are flagged)"
$PO next-runs agents --count 3

step "3. reconcile: the plan first, then (approved by --yes) the apply to $PLANNER_STATE_DIR"
$PO reconcile --path agents --yes

step "4. reconcile --dry-run: nothing left to do"
$PO reconcile --path agents --dry-run --detailed-exitcode
echo "(exit code 0: no changes; 2 would mean changes present)"

step "5. status"
$PO status

step "6. run two jobs now through the executor path (embedded outbox: no platform configured)"
$PO run-now job-application-agent/jobs/morning-job-check
$PO run-now job-application-agent/jobs/daily-application-check
$PO runs

step "7. an event arrives for the recruiter-email trigger: inbox, worker, chat"
$PO inbox inject job-application-agent/triggers/recruiter-email \
  -d '{"subject": "Interview: Senior Python Engineer", "sender": "recruiter@acme.example"}'
$PO worker --once
$PO runs --limit 3

step "8. explain: why each slot of a job did or did not run (the last 7 days and the next fire)"
$PO explain job-application-agent/daily-application-check

step "9. serve: the status API, the Planner dashboard and /metrics over the same state"
# the engineering agent's signed deploy hook needs its secret before serve starts (demo value)
export DEPLOY_WEBHOOK_SECRET="whsec_$(.venv/bin/python -c 'import base64, os; print(base64.b64encode(os.urandom(24)).decode())')"
PORT=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
$PO serve --port "$PORT" > "$PLANNER_STATE_DIR/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/healthz" > /dev/null && break; sleep 0.1; done
curl -fs "http://127.0.0.1:$PORT/healthz" > /dev/null || { cat "$PLANNER_STATE_DIR/serve.log"; exit 1; }
echo "GET /api/jobs:"
curl -fs "http://127.0.0.1:$PORT/api/jobs" | .venv/bin/python -c '
import json, sys
for job in json.load(sys.stdin):
    nxt = job["next_runs"][0]["at"] if job["next_runs"] else "-"
    key, state, words = job["key"], job["state"], job["schedule_text"]
    print(f"  {key:<48} {state:<7} {words:<34} next {nxt}")'
echo "POST /api/jobs/sales-agent/weekly-pipeline-review/run (token from $PLANNER_STATE_DIR/api-token):"
curl -fs -X POST -H "Authorization: Bearer $(cat "$PLANNER_STATE_DIR/api-token")" \
  "http://127.0.0.1:$PORT/api/jobs/sales-agent/weekly-pipeline-review/run" | .venv/bin/python -c '
import json, sys
run = json.load(sys.stdin)
ident, status, origin = run["id"], run["status"], run["origin"]
print(f"  run {ident}: {status} ({origin})")'
echo "GET /metrics (excerpt):"
curl -fs "http://127.0.0.1:$PORT/metrics" | grep -E '^planner_(job_runs_total|inbox_depth|last_reconcile_success)' | head -6
kill $SERVER; wait $SERVER 2>/dev/null || true
trap - EXIT

step "10. an edit over the API becomes a commit in a demo repository, then runs"
# `run --repo` follows a (local, bare) demo repository; PLANNER_EDIT_MODE=commit makes a save a
# commit on the watched branch (the default, pr, would push a branch and open a pull request)
EDIT_STATE=.planner/demo-edit
rm -rf "$EDIT_STATE" && mkdir -p "$EDIT_STATE/seed"
cp -r agents "$EDIT_STATE/seed/"
git -C "$EDIT_STATE/seed" init -q -b main
git -C "$EDIT_STATE/seed" add agents
git -C "$EDIT_STATE/seed" -c user.name=Demo -c user.email=demo@example.com commit -qm "Example agents"
git clone -q --bare "$EDIT_STATE/seed" "$EDIT_STATE/repo.git"
PORT=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PLANNER_STATE_DIR="$EDIT_STATE/state" PLANNER_EDIT_MODE=commit \
  PLANNER_EDIT_AUTHOR="Planner Demo <demo@example.com>" \
  $PO run --repo "$EDIT_STATE/repo.git" --interval 1s --port "$PORT" > "$EDIT_STATE/run.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
URL="http://127.0.0.1:$PORT"
for _ in $(seq 300); do
  curl -fs "$URL/api/jobs/sales-agent/weekly-pipeline-review" > /dev/null && break; sleep 0.1
done
curl -fs "$URL/api/jobs/sales-agent/weekly-pipeline-review" > /dev/null || { cat "$EDIT_STATE/run.log"; exit 1; }
AUTH="Authorization: Bearer $(cat "$EDIT_STATE/state/api-token")"
BASE=$(curl -fs "$URL/api/agents/sales-agent/source" | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["revision"])')
echo "POST /api/agents/sales-agent/jobs/demo-check?base=${BASE:0:12}:"
curl -fs -X POST -H "$AUTH" -H 'Content-Type: application/json' \
  "$URL/api/agents/sales-agent/jobs/demo-check?base=$BASE" \
  -d '{"schedule": "0 8 * * 1-5", "description": "Made through the API.",
       "action": {"chat": {"template": "Good morning from the demo: it is {weekday}."}}}' \
  | .venv/bin/python -c '
import json, sys
answer = json.load(sys.stdin)
status, detail = answer["status"], answer["detail"]
print(f"  {status}: {detail}")
print("  " + answer["summary"])
for line in answer["diff"].splitlines():
    print("    " + line)'
echo "git log of the demo repository:"
git --git-dir "$EDIT_STATE/repo.git" log --format='  %h %an: %s' -2
for _ in $(seq 300); do curl -fs "$URL/api/jobs/sales-agent/demo-check" > /dev/null && break; sleep 0.1; done
echo "the watcher applied the commit; POST /api/jobs/sales-agent/demo-check/run:"
curl -fs -X POST -H "$AUTH" "$URL/api/jobs/sales-agent/demo-check/run" | .venv/bin/python -c '
import json, sys
run = json.load(sys.stdin)
ident, status, origin = run["id"], run["status"], run["origin"]
print(f"  run {ident}: {status} ({origin})")'
kill $SERVER; wait $SERVER 2>/dev/null || true
trap - EXIT
echo
echo "To keep it running: PLANNER_STATE_DIR=$PLANNER_STATE_DIR DEPLOY_WEBHOOK_SECRET=<whsec_...> \\"
echo "  .venv/bin/planner-operator run --path agents"
echo "then open http://127.0.0.1:8000/planner/ (log in with the token in $PLANNER_STATE_DIR/api-token)."

