"""planner-operator: GitOps for AI-agent automation.

Agent files in git are the desired state; Inngest (schedules) and Composio (event triggers), or
the embedded local backend, hold the actual state; the operator plans between them and applies.
"""

__version__ = "0.1.0"
