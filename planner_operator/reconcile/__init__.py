"""From agent files to applied state: source, the pure planner, apply, the engine, watch, render."""
