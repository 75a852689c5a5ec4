"""The read model: views, status, remote states, run views, state metrics, explain."""
