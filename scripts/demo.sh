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

step "3. reconcile --dry-run: what would change"
set +e
$PO reconcile --path agents --dry-run --detailed-exitcode
code=$?
set -e
echo "(exit code $code: 2 = changes present)"

step "4. reconcile: apply to the embedded backend ($PLANNER_STATE_DIR)"
$PO reconcile --path agents

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

step "8. reconcile again: nothing left to do"
$PO reconcile --path agents --dry-run --detailed-exitcode
echo "(exit code 0: no changes)"
