"""Terminal output: Terraform's symbols and summary, blocked changes, elision, no stray escapes."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from planner_operator.backends.base import RemoteObject
from planner_operator.errors import ConfigError
from planner_operator.reconcile.plan import Plan, plan
from planner_operator.reconcile.render import render
from planner_operator.reconcile.render.text import render_text
from tests.reconcile.render import NOW, applied, chat, job, make_plan, trigger

ANSI = re.compile(r"\x1b\[")


def mixed_plan() -> Plan:
    """One change of every kind: create, update, replace, delete."""
    morning = job("careers", "morning", schedule="0 9 * * 1")
    mail = trigger("careers", "mail")
    old = job("careers", "old")
    keep = [job("careers", f"keep-{i}") for i in range(30)]
    want = [
        job("careers", "morning", schedule="0 10 * * 1"),
        trigger("careers", "mail", config={"label": "INBOX"}),
        job("careers", "brand-new", description="weekly digest"),
        *keep,
    ]
    return make_plan(want, [morning, mail, old, *keep])


def test_each_op_has_its_symbol_and_the_summary_counts_them() -> None:
    out = render_text(mixed_plan())
    assert "  + careers/jobs/brand-new  (new in config)" in out
    assert "  ~ careers/jobs/morning  (changed: schedule)" in out
    assert '      ~ schedule: "0 9 * * 1" -> "0 10 * * 1"' in out
    assert "  -/+ careers/triggers/mail  (config cannot change in place" in out
    assert '      + config: {"label": "INBOX"}  # forces replacement' in out
    assert "  - careers/jobs/old  (no longer declared in agents/careers.yaml)" in out
    assert "      # remote id rid-2" in out
    assert out.rstrip().endswith("Plan: 1 to create, 1 to update, 1 to replace, 1 to delete.")
    assert "30 unchanged." in out


def test_create_shows_key_fields_briefly() -> None:
    hook = trigger(
        "careers",
        "hook",
        webhook={"secret_env": "HOOK_SECRET", "scheme": "github"},
        action={"workflow": {"id": "wf-1", "input": {}}},
    )
    out = render_text(
        make_plan([job("careers", "a", timezone="Europe/Berlin"), trigger("careers", "b"), hook])
    )
    assert '      schedule: "0 9 * * 1" (Europe/Berlin)' in out
    assert '      action: chat "Good morning from {agent}"' in out
    assert '      event: "GMAIL_NEW_MESSAGE" (gmail)' in out
    assert "      webhook: secret from $HOOK_SECRET (github)" in out
    assert '      action: workflow "wf-1"' in out


def test_blocked_change_is_shown_and_not_counted() -> None:
    kept = job("careers", "kept")
    out = render_text(make_plan([kept], [kept, job("careers", "vip")], protect=True))
    assert "  - careers/jobs/vip" in out
    assert "      ! blocked: protected: pass --allow-protected-delete to delete it" in out
    assert "Plan: 0 to create, 0 to update, 0 to replace, 0 to delete." in out
    assert "1 change blocked (not counted above)." in out
    assert "No changes" not in out


def test_notes_are_comment_lines() -> None:
    before = job("careers", "a")
    out = render_text(make_plan([job("careers", "a", enabled=False)], [before]))
    assert "  ~ careers/jobs/a  (changed: enabled)" in out
    assert "      # paused" in out


def test_rename_is_noted_on_both_sides() -> None:
    out = render_text(make_plan([job("careers", "new-name")], [job("careers", "old-name")]))
    assert "      # renamed from old-name" in out
    assert "      # renamed to new-name" in out


def test_large_noop_plan_stays_short() -> None:
    resources = [job(f"agent-{i % 40}", f"job-{i}") for i in range(2_000)]
    out = render_text(make_plan(resources, resources))
    assert out.count("\n") < 6
    assert "2000 unchanged." in out
    assert out.rstrip().endswith("No changes. Remote state matches the agent files.")


def test_frozen_noops_are_listed_with_their_reason() -> None:
    error = ConfigError("bad indent", file="agents/careers.yaml", line=4, col=2)
    out = render_text(make_plan([], [job("careers", "a"), job("news", "b")], errors=[error]))
    assert out.index("Load errors (1):") < out.index("Frozen")
    assert "  agents/careers.yaml:4:2: bad indent" in out
    assert "  careers/jobs/a  (frozen: agents/careers.yaml failed to load" in out
    assert "! blocked: not deleting while 1 file(s) fail to load" in out
    assert "Refused:" in out


def test_no_escape_codes_without_color_even_from_user_text() -> None:
    error = ConfigError("bad \x1b[31mred\x1b[0m value\x07", file="agents/x.yaml")
    plan = make_plan([job("a", "x", description="\x1b]0;title\x07")], errors=[error])
    out = render_text(plan, color=False)
    assert not ANSI.search(out)
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "\x1b" not in render(plan, "text", now=NOW)


def test_color_paints_symbols() -> None:
    out = render_text(mixed_plan(), color=True)
    assert "\x1b[32m+\x1b[0m" in out  # green create
    assert "\x1b[33m~\x1b[0m" in out  # yellow update
    assert "\x1b[31m-\x1b[0m" in out  # red delete
    assert "\x1b[35m-/+\x1b[0m" in out  # magenta replace


def test_long_values_are_truncated_and_secrets_redacted() -> None:
    before = trigger("careers", "t", config={"api_token": "tok-123", "q": "x"})
    after = trigger("careers", "t", config={"api_token": "tok-456", "q": "y" * 300})
    out = render_text(make_plan([after], [before]))
    assert "tok-123" not in out
    assert "tok-456" not in out
    assert '"<redacted>"' in out
    line = next(ln for ln in out.splitlines() if "config.q" in ln)
    assert line.endswith("…  # forces replacement")
    assert len(line) < 200


def test_env_var_names_are_shown_not_redacted() -> None:
    hook = {"secret_env": "OLD_SECRET", "scheme": "standard"}
    before = trigger("c", "hook", webhook=hook, action=chat("x"))
    after = trigger("c", "hook", webhook={**hook, "secret_env": "NEW_SECRET"}, action=chat("x"))
    out = render_text(make_plan([after], [before]))
    assert '~ webhook.secret_env: "OLD_SECRET" -> "NEW_SECRET"' in out


def test_notices_come_before_changes() -> None:
    a = job("careers", "a")
    entry, _ = applied(a, "rid-0")
    drifted = RemoteObject("rid-0", "job", {**a.spec, "schedule": "0 8 * * *"}, key=a.key)
    strays = [RemoteObject(f"stray-{i}", "trigger", {}) for i in range(7)]
    new = job("x", "new")
    out = render_text(plan({a.key: a, new.key: new}, [drifted, *strays], [entry]))
    assert "Drift (changed outside the operator, 1):" in out
    assert "careers/jobs/a (rid-0): changed remotely: schedule" in out
    assert "Unmanaged: 7 remote object(s) not in the ledger, never touched:" in out
    assert "trigger stray-0, trigger stray-1" in out
    assert ", and 2 more" in out
    assert out.index("Unmanaged") < out.index("Planned changes")


def test_revision_header_and_empty_plan() -> None:
    out = render_text(make_plan())
    assert out.startswith("Plan for 0123456789ab (main)\n")
    assert out.rstrip().endswith("No changes. Remote state matches the agent files.")
    assert render_text(Plan(changes=())) == "No changes. Remote state matches the agent files.\n"


@settings(max_examples=60, deadline=None)
@given(message=st.text(), description=st.text(), color=st.booleans())
def test_arbitrary_user_text_never_reaches_the_terminal_raw(
    message: str, description: str, color: bool
) -> None:
    error = ConfigError(message, file="agents/x.yaml", hint=message)
    out = render_text(
        make_plan([job("a", "j", description=description)], errors=[error]), color=color
    )
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", plain)


# -- what the markdown plan showed and the text plan did not (issue 18) --------------------------


def test_a_created_job_shows_its_next_fires_in_its_zone_and_utc() -> None:
    plan = make_plan([job("careers", "digest", schedule="0 9 * * 1", timezone="Europe/Berlin")])
    out = render(plan, "text", now=NOW)
    assert "      # agents/careers.yaml:3\n" in out
    assert "      next fires: Mon 2026-03-09 09:00 CET  (08:00 UTC)\n" in out
    assert "                  Mon 2026-03-16 09:00 CET  (08:00 UTC)\n" in out


def test_a_job_firing_within_the_hour_is_flagged() -> None:
    plan = make_plan([job("a", "soon", schedule="30 12 * * *")])  # NOW is 12:00 UTC
    out = render(plan, "text", now=NOW)
    assert "! fires within an hour: first fire in about 30 min" in out


def test_dst_nights_are_flagged_on_their_fire() -> None:
    """Europe's spring-forward night (2026-03-29): 02:30 does not exist in Berlin."""
    plan = make_plan([job("a", "night", schedule="30 2 * * *", timezone="Europe/Berlin")])
    out = render(plan, "text", now=datetime(2026, 3, 27, 12, tzinfo=UTC))
    [flagged] = [line for line in out.splitlines() if "2026-03-29" in line]
    assert "!" in flagged


def test_a_paused_job_shows_no_fires() -> None:
    plan = make_plan([job("a", "off", enabled=False)])
    assert "next fires" not in render(plan, "text", now=NOW)


def test_a_delete_shows_what_is_destroyed() -> None:
    gone = job("a", "old", schedule="0 7 * * *", action=chat("Stand-up notes for {date}"))
    out = render_text(make_plan([], [gone]), color=False)
    assert '      - schedule: "0 7 * * *" (UTC)\n' in out
    assert '      - action: chat "Stand-up notes for {date}"\n' in out
    assert "      # remote id rid-0\n" in out
