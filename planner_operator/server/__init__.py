"""The long-running side: the FastAPI app behind `planner-operator serve`."""
