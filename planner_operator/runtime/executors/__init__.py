"""What a fire does: start a chat thread or run a workflow (Protocols, embedded and HTTP)."""
