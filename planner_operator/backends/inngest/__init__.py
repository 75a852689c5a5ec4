"""Inngest through its official SDK: the schedule backend and the SDK adapter."""
