"""Composio through its official SDK: the trigger backend, checks, subscription."""
