#!/usr/bin/env bash
# `make demo-mastra`: the demo's job path with chats and workflows on a real Mastra server
# (tests/mastra, Node from the venv; the packages come from the npm registry on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
PO=.venv/bin/planner-operator
export PLANNER_STATE_DIR=.planner/demo-mastra
rm -rf "$PLANNER_STATE_DIR"
mkdir -p "$PLANNER_STATE_DIR"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. start the Mastra server (agent sales-agent; workflows sum-numbers, slow-maybe-fail)"
.venv/bin/python scripts/mastra_server.py "$PLANNER_STATE_DIR/mastra" > "$PLANNER_STATE_DIR/mastra.url" &
MASTRA=$!
trap 'kill $MASTRA 2>/dev/null || true' EXIT
for _ in $(seq 600); do [ -s "$PLANNER_STATE_DIR/mastra.url" ] && break; sleep 0.2; done
export PLANNER_MASTRA_URL="$(cat "$PLANNER_STATE_DIR/mastra.url")"
[ -n "$PLANNER_MASTRA_URL" ] || { echo "the Mastra server did not start"; exit 1; }
echo "PLANNER_MASTRA_URL=$PLANNER_MASTRA_URL"

step "2. validate: the agent and the workflow are checked against what Mastra serves"
$PO validate examples/mastra/agents

step "3. reconcile (embedded scheduler; the actions run on Mastra)"
$PO reconcile --path examples/mastra/agents --yes

step "4. run the chat job now: a new Mastra thread, and the agent's reply in run history"
$PO run-now sales-agent/weekly-pipeline-review
step "5. run the workflow job now: a Mastra run, its result in run history"
$PO run-now sales-agent/deal-total
step "6. run history: the reply and the workflow result, as the API and dashboard show them"
$PO runs --limit 5
