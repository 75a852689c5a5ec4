"""The example GitHub workflow, run as written: its commands, from fresh runners, on one database.

Issue 15's done-when: "the example workflow's commands, run from two different directories
against one database, plan 'no changes' after an apply". Each step's ``run:`` script is taken
from ``examples/github-workflow.yml`` itself, its ``${{ ... }}`` expressions filled in as
GitHub would (secrets, variables, shas; an expression the test does not know fails it), and run
with ``bash -e`` in a clone of its own, as a fresh runner would: a different directory, its own
``runner.temp``, nothing but the shared PostgreSQL (``tests/support/postgres.py``) and the
backends (Inngest and Composio on their fakes) in common. The ``--server`` job's plan is made by
a running ``serve`` on the same database and must say exactly what the database job's says.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import git
import pytest
from ruamel.yaml import YAML

from planner_operator.core.settings import Settings
from planner_operator.reconcile.render.text import NO_CHANGES
from planner_operator.server.app import create_app
from tests.fakes.composio_server import FakeComposio
from tests.fakes.inngest_server import FakeInngest
from tests.fakes.serving import run_app
from tests.support import canaries, shared_state
from tests.support.inngest_serve import serving_mount

ROOT = Path(__file__).resolve().parents[2]
PUBLIC_URL = "https://planner.example.com"
WORKFLOW = ROOT / "examples" / "github-workflow.yml"
EXPRESSION = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")
TOKEN = canaries.SESSION["PLANNER_API_TOKEN"]


def workflow() -> dict[str, Any]:
    with WORKFLOW.open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = YAML(typ="safe").load(handle)
    return loaded


class Runner:
    """One fresh GitHub runner: a clone at ``sha``, its own temp directory and outputs."""

    def __init__(self, root: Path, origin: Path, sha: str, backend_env: Mapping[str, str]):
        self.root = root
        self.checkout = root / "checkout"
        with git.Repo.clone_from(origin, self.checkout) as repo:
            repo.git.checkout(sha)
        (root / "temp").mkdir()
        self.outputs = root / "github-output"
        self.backend_env = backend_env

    def run(self, job: str, step: str, context: Mapping[str, str]) -> tuple[int, str]:
        """Run the step's script as GitHub would; (exit code, stdout + stderr)."""
        flow = workflow()
        spec = flow["jobs"][job]
        [found] = [s for s in spec["steps"] if s.get("name") == step]
        known = {**context, "runner.temp": str(self.root / "temp")}
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PLANNER_", "INNGEST_", "COMPOSIO_"))
        }
        env.update(self.backend_env)  # where the fakes listen: the runner's network, not the file
        for scope in (flow.get("env", {}), spec.get("env", {}), found.get("env", {})):
            env.update({name: expand(str(value), known) for name, value in scope.items()})
        env["GITHUB_OUTPUT"] = str(self.outputs)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        script = self.root / f"{job}-{step}.sh"
        script.write_text(expand(found["run"], known), encoding="utf-8")
        done = subprocess.run(
            ["bash", "-e", str(script)],
            cwd=self.checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        return done.returncode, done.stdout + done.stderr

    def output(self, name: str) -> str:
        lines = self.outputs.read_text(encoding="utf-8").splitlines()
        return [line.split("=", 1)[1] for line in lines if line.startswith(f"{name}=")][-1]

    def plan(self) -> str:
        return (self.checkout / "plan.md").read_text(encoding="utf-8")


def expand(text: str, known: Mapping[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in known, f"{WORKFLOW.name} uses ${{{{ {name} }}}}, which this test lacks"
        return known[name]

    return EXPRESSION.sub(value, text)


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeInngest, FakeComposio]]:
    monkeypatch.delenv("COMPOSIO_WEBHOOK_SECRET", raising=False)
    with FakeInngest() as inngest, FakeComposio() as composio:
        yield inngest, composio


@pytest.fixture
def origin(tmp_path: Path) -> git.Repo:
    """The repository the workflow runs in: agents/ on main."""
    path = tmp_path / "origin"
    (path / "agents").mkdir(parents=True)
    (path / "agents" / "recruiting.yaml").write_text(shared_state.agent(), encoding="utf-8")
    repo = git.Repo.init(path, initial_branch="main")
    repo.index.add(["agents/recruiting.yaml"])
    repo.index.commit("agents")
    return repo


def commit_schedule(repo: git.Repo, schedule: str) -> str:
    path = Path(repo.working_dir) / "agents" / "recruiting.yaml"
    path.write_text(shared_state.agent(schedule), encoding="utf-8")
    repo.index.add(["agents/recruiting.yaml"])
    return repo.index.commit(f"move to {schedule}").hexsha


@pytest.mark.slow  # seven CLI processes and a serve: about 30 s alone, minutes on a busy machine
def test_two_runners_plan_no_changes_after_an_apply_also_through_the_server(
    fakes: tuple[FakeInngest, FakeComposio], origin: git.Repo, pg_url: str, tmp_path: Path
) -> None:
    inngest, composio = fakes
    # `serve`'s origin (vars.INNGEST_SERVE_ORIGIN): a serving app on the shared database; only
    # it syncs Inngest, and the apply job asks it to
    shared = dataclasses.replace(Settings.at(tmp_path / "serving"), database_url=pg_url)
    with serving_mount(shared, {"INNGEST_DEV": inngest.base_url}) as serve_origin:
        _run_the_workflow(inngest, composio, origin, pg_url, tmp_path, serve_origin)


def _run_the_workflow(
    inngest: FakeInngest,
    composio: FakeComposio,
    origin: git.Repo,
    pg_url: str,
    tmp_path: Path,
    serve_origin: str,
) -> None:
    # the runner's view of the backends: the fakes' URLs; the workflow file sets the rest
    backend_env = {
        "INNGEST_DEV": inngest.base_url,
        "COMPOSIO_BASE_URL": composio.base_url,
        "PLANNER_SCHEDULE_BACKEND": "inngest",
        "PLANNER_TRIGGER_BACKEND": "composio",
    }
    context = {
        "secrets.PLANNER_DATABASE_URL": pg_url,
        "secrets.INNGEST_SIGNING_KEY": "",  # dev mode on the fake (INNGEST_DEV above)
        "secrets.COMPOSIO_API_KEY": composio.api_key,
        "secrets.PLANNER_API_TOKEN": TOKEN,
        "vars.PLANNER_PUBLIC_URL": PUBLIC_URL,
        "vars.INNGEST_SERVE_ORIGIN": serve_origin,
    }
    main = origin.head.commit.hexsha
    applier = Runner(tmp_path / "runner-apply", Path(origin.working_dir), main, backend_env)
    code, log = applier.run("apply", "Apply", {**context, "github.sha": main})
    assert code == 0, log
    assert len(composio.instances()) == 1 and inngest.apps

    pr = {**context, "github.event.pull_request.head.sha": main}
    planner = Runner(tmp_path / "runner-plan", Path(origin.working_dir), main, backend_env)
    code, log = planner.run("plan", "Validate", pr)
    assert code == 0, log
    code, log = planner.run("plan", "Plan", pr)
    assert code == 0 and planner.output("exitcode") == "0", log
    assert NO_CHANGES in planner.plan()
    assert "| recruiting | 0 | 0 | 0 | 0 | 3 |" in planner.plan()  # nothing taken for new

    serve_env = {
        **backend_env,
        "COMPOSIO_API_KEY": composio.api_key,
        "PLANNER_PUBLIC_URL": PUBLIC_URL,
        "INNGEST_SERVE_ORIGIN": serve_origin,  # this serve registers the same URL
        "PLANNER_API_TOKEN": TOKEN,
        "PLANNER_WORKER": "0",
        "DEPLOY_HOOK_SECRET": canaries.plain("deploy-hook"),
    }
    serve_settings = dataclasses.replace(Settings.at(tmp_path / "serve"), database_url=pg_url)
    with run_app(create_app(serve_settings, serve_env)) as url:
        remote = {**pr, "vars.PLANNER_SERVER_URL": url}
        ci = Runner(tmp_path / "runner-server", Path(origin.working_dir), main, backend_env)
        code, log = ci.run("plan-on-server", "Plan", remote)
        assert code == 0 and ci.output("exitcode") == "0", log
        assert ci.plan() == planner.plan()

        # a pull request that moves a schedule: both plans show the one update, exit code 2
        head = commit_schedule(origin, "0 10 * * 1")
        change = {**pr, "github.event.pull_request.head.sha": head}
        fresh = Runner(tmp_path / "runner-pr", Path(origin.working_dir), head, backend_env)
        code, log = fresh.run("plan", "Plan", change)
        assert code == 0 and fresh.output("exitcode") == "2", log
        assert "1 to update" in fresh.plan() and "0 to create" in fresh.plan()
        other = Runner(tmp_path / "runner-pr-server", Path(origin.working_dir), head, backend_env)
        code, log = other.run("plan-on-server", "Plan", {**change, "vars.PLANNER_SERVER_URL": url})
        assert code == 0 and other.output("exitcode") == "2", log
        assert other.plan() == fresh.plan()
