"""`python -m planner_operator` runs the CLI."""

from planner_operator.cli.main import main

main()
