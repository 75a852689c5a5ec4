"""`python -m planner_operator` runs the CLI."""

from planner_operator.cli import main

main()
