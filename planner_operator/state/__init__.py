"""The storage layer: everything the operator keeps (ledger, intents, lock, inbox, runs)."""
