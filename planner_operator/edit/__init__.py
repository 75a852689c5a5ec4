"""Edits of agent files from the API and dashboard: a save is a change to the file, never to
the state.

``yamledit`` (pure) changes the YAML text in ruamel.yaml's round-trip mode; ``propose`` loads,
validates and plans the edited file with the same code as ``reconcile --dry-run`` and then
writes it (work tree), commits it, or pushes a branch and opens a pull request through a
``forge``; ``gitops`` is the git plumbing (commits without a checkout).
"""
