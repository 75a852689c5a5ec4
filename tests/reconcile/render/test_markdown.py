"""PR-comment output: fire-time previews, sample messages, and the GitHub size limit."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner_operator.backends.base import RemoteObject
from planner_operator.errors import ConfigError
from planner_operator.reconcile.plan import Plan
from planner_operator.reconcile.render import render
from planner_operator.reconcile.render.markdown import TITLE, render_markdown
from planner_operator.reconcile.render.text import summary_line
from tests.reconcile.render import NOW, chat, job, make_plan, trigger

TABLE_HEADER = "| agent | create | update | replace | delete | unchanged |"


def md(plan: Plan, *, now: datetime = NOW, limit: int = 65_536) -> str:
    out = render_markdown(plan, now=now, limit=limit)
    assert len(out) < limit
    return out


def test_header_summary_and_per_agent_table() -> None:
    morning = job("careers", "morning")
    quiet = [job("news", f"n{i}") for i in range(3)]
    plan = make_plan([job("careers", "morning", schedule="0 10 * * 1"), *quiet], [morning, *quiet])
    out = md(plan)
    assert out.startswith(f"{TITLE}\n\nRevision `0123456789ab (main)`\n")
    assert "**Plan: 0 to create, 1 to update, 0 to replace, 0 to delete.**" in out
    assert TABLE_HEADER in out
    assert "| careers | 0 | 1 | 0 | 0 | 0 |" in out
    assert "| news | 0 | 0 | 0 | 0 | 3 |" in out
    assert "| **total** | 0 | 1 | 0 | 0 | 3 |" in out
    assert render(plan, "markdown", now=NOW) == out


def test_next_fires_in_job_zone_and_utc_with_dst_flag() -> None:
    plan = make_plan([job("careers", "night", schedule="30 2 * * *", timezone="America/New_York")])
    out = md(plan)
    assert "- **Schedule:** `30 2 * * *`: At 02:30, timezone `America/New_York`" in out
    rows = [line for line in out.splitlines() if line.startswith("| 1 |")]
    assert rows == [
        "| 1 | Sun 2026-03-08 03:00 EDT | Sun 2026-03-08 07:00 | "
        "⚠ DST gap: 02:30 does not exist, fired at 03:00 (vixie) |"
    ]
    assert "| 2 | Mon 2026-03-09 02:30 EDT | Mon 2026-03-09 06:30 |  |" in out
    assert "| 3 |" in out
    assert "| 4 |" not in out
    assert "fires within an hour" not in out


def test_warns_when_first_fire_is_within_an_hour_of_now() -> None:
    soon = job("careers", "soon", schedule="0 9 * * *", timezone="America/New_York")
    later = job("careers", "later", schedule="0 18 * * *", timezone="America/New_York")
    now = datetime(2026, 3, 7, 13, 35, tzinfo=UTC)  # 08:35 EST, 25 minutes before 09:00
    out = md(make_plan([soon]), now=now)
    assert "⚠ **fires within an hour of merge:** first fire in about 25 min (09:00 EST)" in out
    assert "fires within an hour" not in md(make_plan([later]), now=now)


def test_paused_job_says_paused_instead_of_fires() -> None:
    out = md(make_plan([job("careers", "p", enabled=False)]))
    assert "- **Paused:** does not fire until `enabled: true`." in out
    assert "| next fire |" not in out


def test_sample_message_for_a_job_uses_first_fire_and_variables() -> None:
    action = chat("Hi {name}: {weekday} {date} {time}, run {run_id} of {agent}/{job}", name="Ann")
    plan = make_plan([job("careers", "digest", timezone="Europe/Berlin", action=action)])
    out = md(plan)
    assert "- **Sample message** (as a run at 2026-03-09 09:00 CET would send it):" in out
    # a blockquote, so a long message wraps instead of scrolling sideways in a code block
    assert "\n> Hi Ann: Monday 2026-03-09 09:00, run sample of careers/digest\n" in out


def test_trigger_sample_shows_payload_markers() -> None:
    action = chat("Mail for {team}: {subject} from {sender.name}", team="ops")
    out = md(make_plan([trigger("careers", "mail", action=action)]))
    assert "- **Source:** `gmail` event `GMAIL_NEW_MESSAGE` for `ca_123`" in out
    assert "(event fields shown as `<name>`)" in out
    assert "> Mail for ops: \\<subject\\> from \\<sender.name\\>" in out


def test_workflow_action_shows_id_and_input() -> None:
    action = {"workflow": {"id": "wf-7", "input": {"who": "{agent}", "n": 3}}}
    out = md(make_plan([job("careers", "wf", action=action)]))
    assert "- **Workflow:** `wf-7` with input:" in out
    assert '```json\n{\n  "n": 3,\n  "who": "{agent}"\n}\n```' in out


def test_update_has_a_diff_block() -> None:
    before = job("careers", "a", description="old")
    out = md(make_plan([job("careers", "a", schedule="0 10 * * 1")], [before]))
    assert (
        '```diff\n- description: "old"\n- schedule: "0 9 * * 1"\n+ schedule: "0 10 * * 1"\n```'
        in out
    )


def test_load_errors_refusals_blocked_drift_unmanaged() -> None:
    error = ConfigError(
        "unknown field", file="agents/news.yaml", line=7, col=3, path="planner.jobz", hint="jobs?"
    )
    stray = RemoteObject("fn-9", "job", {})
    kept = job("careers", "kept")
    plan = make_plan([kept], [kept, job("careers", "x")], errors=[error], extra_remote=[stray])
    out = md(plan)
    assert "> [!CAUTION]" in out
    assert "> - `agents/news.yaml:7:3` `planner.jobz`: unknown field _(jobs?)_" in out
    assert "> [!WARNING]\n> **Refused:**" in out
    assert "#### Blocked (not counted)" in out
    assert "- `- careers/jobs/x`: not deleting while 1 file(s) fail to load" in out
    assert "**Unmanaged:** 1 remote object(s) not in the ledger, never touched: `job fn-9`." in out
    assert "1 blocked (not counted; see below)." in out


def test_no_changes() -> None:
    same = [job("careers", "a")]
    out = md(make_plan(same, same))
    assert "**No changes. Remote state matches the agent files.**" in out
    assert "#### Changes" not in out


def test_user_text_cannot_break_out_or_ping() -> None:
    template = "```\n</details> @everyone {x}"
    action = chat(template, x="`")
    error = ConfigError("ping @octocat <b>bold</b>", file="agents/a.yaml")
    out = md(make_plan([job("a", "j", action=action)], errors=[error]))
    assert "&#64;everyone" in out and "@everyone" not in out  # quoted, never a mention
    assert "> \\`\\`\\`\n" in out  # the sample's backticks are text, not a fence
    assert "</details> &#64;" not in out  # nor can it close the details block
    assert "@octocat" not in out
    assert "<b>" not in out


def test_three_thousand_changes_stay_under_githubs_limit() -> None:
    resources = [
        job(f"agent-{i % 30:02d}", f"job-{i:04d}", timezone="America/New_York")
        for i in range(3_000)
    ]
    plan = make_plan(resources)
    out = md(plan)
    assert len(out) < 65_536
    assert f"**{summary_line(plan)}**" in out
    assert "**Plan: 3000 to create, 0 to update, 0 to replace, 0 to delete.**" in out
    assert TABLE_HEADER in out
    assert "| agent-29 | 100 | 0 | 0 | 0 | 0 |" in out
    assert "changes summarised without details" in out
    assert "`planner-operator reconcile --dry-run`" in out
    hidden = re.search(r"; (\d+) not listed at all", out)
    assert hidden is not None
    assert f"- _… and {hidden[1]} more (not listed)_" in out


def test_medium_plan_keeps_details_for_the_first_changes() -> None:
    plan = make_plan([job("careers", f"job-{i:02d}") for i in range(40)])
    out = md(plan, limit=12_000)
    detailed = out.count("<details>")
    assert 0 < detailed < 40
    assert f"_{40 - detailed} of 40 changes summarised without details" in out
    assert "- `+ careers/jobs/job-39` create: new in config" in out


@pytest.mark.parametrize("limit", [50, 300, 1_000, 3_000])
def test_any_limit_is_respected(limit: int) -> None:
    errors = [ConfigError(f"problem {i}", file=f"agents/a{i}.yaml") for i in range(80)]
    plan = make_plan([job(f"agent-{i}", "j") for i in range(300)], errors=errors)
    assert len(render_markdown(plan, now=NOW, limit=limit)) < limit


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        render_markdown(make_plan(), now=datetime(2026, 3, 7, 12, 0))


@settings(max_examples=40, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=20_000),
    changes=st.integers(min_value=0, max_value=150),
    errors=st.integers(min_value=0, max_value=60),
    message=st.text(max_size=300),
)
def test_never_reaches_the_limit(limit: int, changes: int, errors: int, message: str) -> None:
    problems = [ConfigError(message, file=f"agents/e{i}.yaml") for i in range(errors)]
    resources = [job(f"agent-{i % 7}", f"j{i}", description=message) for i in range(changes)]
    assert len(render_markdown(make_plan(resources, errors=problems), now=NOW, limit=limit)) < limit


# -- issue 18: what merging does, where each change is, no empty rows ------------------------


def test_footer_says_what_merging_does() -> None:
    out = md(make_plan([job("careers", "a")]))
    assert out.rstrip().endswith(
        "_Merging applies this plan (1 to create, 0 to update, 0 to replace, 0 to delete.) from "
        "the merged commit, through `planner-operator reconcile --yes`. Blocked changes need "
        "their flag; nothing else is touched._"
    )
    same = [job("careers", "a")]
    assert md(make_plan(same, same)).rstrip().endswith("_Merging changes nothing remote._")


def test_each_change_names_its_file_and_line() -> None:
    out = md(make_plan([job("careers", "a")]))
    assert "- **In:** `agents/careers.yaml:3`" in out


def test_agents_with_nothing_at_all_get_no_row() -> None:
    """A blocked delete counts nowhere: its agent has no row of zeros."""
    gone = [job("a", f"j{i}") for i in range(4)]
    out = md(make_plan([], gone))
    assert "| a | 0 | 0 | 0 | 0 | 0 |" not in out


def test_next_fires_on_inngest_skip_the_spring_gap_as_robfig_does() -> None:
    """Issue 16.6: the PR comment predicted the vixie catch-up fire that Inngest never makes."""
    from dataclasses import replace

    plan = make_plan([job("careers", "night", schedule="30 2 * * *", timezone="America/New_York")])
    out = md(replace(plan, schedule_backend="inngest"))
    rows = [line for line in out.splitlines() if line.startswith("| 1 |")]
    assert rows == ["| 1 | Mon 2026-03-09 02:30 EDT | Mon 2026-03-09 06:30 |  |"]
    assert "DST gap" not in out
    assert "**DST on inngest:** a time the spring-forward gap skips does not fire" in out
