"""Agent configuration: models, loading with positions, semantic checks, schema export."""
