"""Checks beyond the schema: schedules, timezones, templates, unique names and ids.

Exact rendered messages again, and the property the issue cares most about: files load
independently, so one broken file never hides the errors or the results of the others.
"""

from __future__ import annotations

import textwrap

import pytest

from planner_operator.config import loader, semantic
from planner_operator.core import templates
from planner_operator.reconcile import source

F = "agents/demo.yaml"
HINT_BUILTINS = "built-ins are " + ", ".join(sorted(templates.JOB_BUILTINS))


def checked(text: str, file: str = F) -> list[str]:
    loaded = semantic.check_files([loader.load_text(textwrap.dedent(text), file)])
    return [e.render() for e in loaded[0].errors]


def load_many(**files: str) -> list[loader.LoadedFile]:
    """``name=text`` pairs as ``agents/<name>.yaml`` (underscores become dashes)."""
    return source.load(
        source.SourceFile(f"agents/{name.replace('_', '-')}.yaml", text.encode(), len(text))
        for name, text in files.items()
    )


def one_job(
    schedule: str = "'@daily'", action: str = "{chat: {template: hi}}", extra: str = ""
) -> str:
    return textwrap.dedent(
        f"""\
        name: Demo
        {extra}
        planner:
          jobs:
            - name: daily
              schedule: {schedule}
              action: {action}
        """
    )


def test_valid_agent_has_no_errors() -> None:
    assert checked(one_job()) == []


# --- schedules and timezones ---------------------------------------------------------------


def test_bad_cron() -> None:
    assert checked(one_job("'61 9 * * *'")) == [
        f"{F}:6:17: planner.jobs[0].schedule: schedule '61 9 * * *': minute field: 61 is out of "
        "range 0-59 (cron fields are minute hour day-of-month month day-of-week, e.g. `0 9 * * 1`)"
    ]


def test_cron_with_six_fields() -> None:
    assert checked(one_job("'0 0 9 * * 1'")) == [
        f"{F}:6:17: planner.jobs[0].schedule: schedule '0 0 9 * * 1' has 6 fields, expected 5: "
        "minute hour day-of-month month day-of-week (seconds and year fields are not supported)"
    ]


def test_misspelt_cron_macro() -> None:
    assert checked(one_job("'@dayly'")) == [
        f"{F}:6:17: planner.jobs[0].schedule: unknown schedule macro '@dayly' "
        "(did you mean '@daily'?)"
    ]


def test_semicolon_inside_the_schedule_is_not_a_hint() -> None:
    assert checked(one_job("'0 9; * *'")) == [
        f"{F}:6:17: planner.jobs[0].schedule: schedule '0 9; * *' has 4 fields, expected 5: "
        "minute hour day-of-month month day-of-week"
    ]


def test_bad_timezone_with_suggestion() -> None:
    assert checked("name: Demo\ntimezone: Europe/Berln\n") == [
        f"{F}:2:11: timezone: unknown timezone 'Europe/Berln' "
        "(did you mean 'Europe/Berlin' (or 'Europe/Dublin', 'Europe/Belfast')?)"
    ]


def test_timezone_written_as_words() -> None:
    assert checked("name: Demo\ntimezone: new york\n") == [
        f"{F}:2:11: timezone: unknown timezone 'new york' (did you mean 'America/New_York'?)"
    ]


def test_bad_job_timezone_without_a_close_match() -> None:
    assert checked(
        one_job(extra="").replace("      action", "      timezone: Mars/Olympus\n      action")
    ) == [
        f"{F}:7:17: planner.jobs[0].timezone: unknown timezone 'Mars/Olympus' "
        "(use an IANA name, e.g. 'UTC')"
    ]


# --- unique names and ids ------------------------------------------------------------------


def test_duplicate_job_name() -> None:
    text = textwrap.dedent(
        """\
        name: Demo
        planner:
          jobs:
            - {name: daily, schedule: '@daily', action: {chat: {template: a}}}
            - {name: daily, schedule: '@hourly', action: {chat: {template: b}}}
        """
    )
    assert checked(text) == [
        f"{F}:5:14: planner.jobs[1].name: duplicate job name `daily` (first defined on line 4) "
        "(job names must be unique within an agent)"
    ]


def test_duplicate_trigger_name() -> None:
    hook = "webhook: {secret_env: S}, action: {workflow: {id: w}}"
    text = (
        f"name: Demo\nplanner:\n  triggers:\n    - {{name: t, {hook}}}\n    - {{name: t, {hook}}}\n"
    )
    assert checked(text) == [
        f"{F}:5:14: planner.triggers[1].name: duplicate trigger name `t` (first defined on line 4) "
        "(trigger names must be unique within an agent)"
    ]


def test_jobs_and_triggers_may_share_a_name() -> None:
    text = (
        one_job()
        + "  triggers:\n    - {name: daily, webhook: {secret_env: S}, "
        + ("action: {workflow: {id: w}}}\n")
    )
    assert checked(text) == []


def test_duplicate_agent_id_across_two_files() -> None:
    first, second = load_many(alpha="id: shared\nname: Alpha\n", beta="name: Beta\nid: shared\n")
    assert first.ok
    assert [e.render() for e in second.errors] == [
        "agents/beta.yaml:2:5: id: agent id `shared` is already used by agents/alpha.yaml "
        "(agent ids must be unique across the repo; set a different `id:`)"
    ]


def test_duplicate_agent_id_from_a_file_name() -> None:
    _, second = load_many(alpha="name: Alpha\n", other="id: alpha\nname: Other\n")
    assert [e.render() for e in second.errors] == [
        "agents/other.yaml:1:5: id: agent id `alpha` is already used by agents/alpha.yaml "
        "(agent ids must be unique across the repo; set a different `id:`)"
    ]


def test_file_name_that_is_not_an_id() -> None:
    assert checked("name: Demo\n", "agents/My Agent.yaml") == [
        "agents/My Agent.yaml:1:1: file name `My Agent.yaml` is not a valid agent id "
        "(rename the file (lowercase letters, digits, dashes) or set `id:`)"
    ]
    assert checked("id: my-agent\nname: Demo\n", "agents/My Agent.yaml") == []


# --- templates -----------------------------------------------------------------------------


def test_missing_template_variable_with_hint() -> None:
    assert checked(one_job(action="{chat: {template: 'Hi {user}'}}")) == [
        f"{F}:7:33: planner.jobs[0].action.chat.template: placeholder `{{user}}` has no value "
        f"(add it to the action's `variables` or the agent's `variables`; {HINT_BUILTINS})"
    ]


def test_misspelt_template_variable_suggests_the_known_one() -> None:
    text = one_job(action="{chat: {template: 'Hi {usr}'}}", extra="variables: {user: Ada}")
    assert checked(text) == [
        f"{F}:7:33: planner.jobs[0].action.chat.template: placeholder `{{usr}}` has no value "
        "(did you mean `{user}`?)"
    ]


def test_bad_template_brace() -> None:
    assert checked(one_job(action="{chat: {template: 'Hi {user'}}")) == [
        f"{F}:7:33: planner.jobs[0].action.chat.template: template: unmatched `{{` at column 4 "
        "(write `{{` for a literal brace)"
    ]


def test_template_placeholder_that_is_not_a_name() -> None:
    assert checked(one_job(action="{chat: {template: 'Hi {user name}'}}")) == [
        f"{F}:7:33: planner.jobs[0].action.chat.template: template: `{{user name}}` at column 4 "
        "is not a placeholder: names are letters, digits and _ with dots between parts; write "
        "`{{` for a literal brace"
    ]


def test_job_values_come_from_builtins_and_both_variable_levels() -> None:
    template = "{agent}/{job} {run_id} on {weekday} {date} {time} {datetime}: {team} {who} {{x}}"
    action = f"{{chat: {{template: '{template}', variables: {{who: me}}}}}}"
    assert checked(one_job(action=action, extra="variables: {team: platform}")) == []


def test_dotted_placeholder_needs_its_root() -> None:
    ok = one_job(action="{chat: {template: '{repo.name}'}}", extra="variables: {repo: x}")
    assert checked(ok) == []
    assert checked(one_job(action="{chat: {template: '{repo.name}'}}"))[0].endswith(
        "placeholder `{repo.name}` has no value "
        f"(add it to the action's `variables` or the agent's `variables`; {HINT_BUILTINS})"
    )


def test_workflow_input_templates_are_checked_for_jobs() -> None:
    text = textwrap.dedent(
        """\
        name: Demo
        planner:
          jobs:
            - name: daily
              schedule: '@daily'
              action:
                workflow:
                  id: report
                  input:
                    days: ['{date}', '{yesterday}']
                    v1.2: {'0': '{nope}'}
                    count: 3
        """
    )
    assert checked(text) == [
        f"{F}:10:30: planner.jobs[0].action.workflow.input.days[1]: placeholder `{{yesterday}}` "
        f"has no value (add it to the action's `variables` or the agent's `variables`; "
        f"{HINT_BUILTINS})",
        f"{F}:11:25: planner.jobs[0].action.workflow.input.v1.2.0: placeholder `{{nope}}` has "
        f"no value (add it to the action's `variables` or the agent's `variables`; "
        f"{HINT_BUILTINS})",
    ]


def test_trigger_placeholders_are_accepted() -> None:
    """Trigger values come from the event payload, unknown until it arrives."""
    text = textwrap.dedent(
        """\
        name: Demo
        planner:
          triggers:
            - name: mail
              toolkit: gmail
              event: GMAIL_NEW_GMAIL_MESSAGE
              connected_account: ca_1
              action: {chat: {template: 'From {sender}: {payload.subject}'}}
            - name: hook
              webhook: {secret_env: HOOK_SECRET, scheme: github}
              action: {workflow: {id: w, input: {ref: '{ref}'}}}
        """
    )
    assert checked(text) == []


def slack(template: str, toolkit: str = "slack", event: str = "SLACK_RECEIVE_MESSAGE") -> str:
    return textwrap.dedent(
        f"""\
        name: Demo
        variables: {{team: growth}}
        planner:
          triggers:
            - name: chat
              toolkit: {toolkit}
              event: {event}
              connected_account: ca_1
              action: {{chat: {{template: '{template}'}}}}
        """
    )


def test_trigger_placeholder_outside_a_known_payload_is_an_error_offline() -> None:
    """The bundled catalog knows SLACK_RECEIVE_MESSAGE's payload: `{usr}` would be a dead
    delivery at runtime, so validate says so at its line, with the field it resembles."""
    assert checked(slack("{usr} in {channel} for {team}")) == [
        f"{F}:9:33: planner.triggers[0].action.chat.template: placeholder `{{usr}}` has no "
        "value (did you mean `{user}`?)"
    ]


def test_trigger_placeholder_without_a_close_field_lists_the_payload_fields() -> None:
    assert checked(slack("{zzz}")) == [
        f"{F}:9:33: planner.triggers[0].action.chat.template: placeholder `{{zzz}}` has no "
        "value (add it to the action's `variables` or the agent's `variables`; "
        "`SLACK_RECEIVE_MESSAGE` payload fields: bot_id, channel, channel_type, team_id, text, "
        "ts, user)"
    ]


def test_trigger_toolkit_must_match_a_known_event() -> None:
    assert checked(slack("{text}", toolkit="gmail")) == [
        f"{F}:6:16: planner.triggers[0].toolkit: `SLACK_RECEIVE_MESSAGE` is a `slack` trigger, "
        "not `gmail` (set `toolkit: slack`)"
    ]


def warned(text: str, file: str = F) -> list[str]:
    loaded = semantic.check_files([loader.load_text(textwrap.dedent(text), file)])
    return [w.render() for w in loaded[0].warnings]


def test_an_unknown_slug_of_a_covered_toolkit_is_an_error_with_did_you_mean() -> None:
    """Issue 18: `SLACK_NEW_MESSAGE` is no Slack trigger type; offline validate says which is."""
    text = slack("{text}", event="SLACK_NEW_MESSAGE")
    assert checked(text) == [
        f"{F}:7:14: planner.triggers[0].event: unknown trigger type `SLACK_NEW_MESSAGE` for "
        "toolkit `slack` (did you mean `SLACK_RECEIVE_MESSAGE`?)"
    ]
    assert warned(text) == []


def test_an_unknown_slug_without_a_close_one_lists_the_toolkits_types() -> None:
    [error] = checked(slack("{text}", toolkit="notion", event="NOTION_ZZZ"))
    assert "unknown trigger type `NOTION_ZZZ` for toolkit `notion`" in error
    assert "`notion` trigger types: NOTION_PAGE_ADDED_TO_DATABASE, NOTION_PAGE_ADDED_TRIGGER" in (
        error
    )
    assert "planner-operator composio trigger-types --toolkit notion" in error


def test_a_type_of_a_toolkit_the_catalog_does_not_cover_is_only_a_warning() -> None:
    """Only Composio knows it: a warning offline, checked live when Composio is configured."""
    text = slack("{anything}", toolkit="zoom", event="ZOOM_MEETING_STARTED")
    assert checked(text) == []  # and its placeholders cannot be checked either
    assert warned(text) == [
        f"{F}:7:14: planner.triggers[0].event: trigger type `ZOOM_MEETING_STARTED` of toolkit "
        "`zoom` cannot be checked offline: the bundled catalog does not cover `zoom` (Composio "
        "checks it at plan time when COMPOSIO_API_KEY is set; `planner-operator composio "
        "trigger-types --toolkit zoom` lists the live ones)"
    ]


def test_a_misspelt_toolkit_gets_a_did_you_mean_in_its_warning() -> None:
    [warning] = warned(slack("{text}", toolkit="slak", event="SLAK_RECEIVE_MESSAGE"))
    assert "(did you mean toolkit `slack`? Composio checks it at plan time" in warning


def test_the_catalog_checks_the_payload_of_the_newly_bundled_types() -> None:
    assert checked(slack("{reaction} by {user}", event="SLACK_REACTION_ADDED")) == []
    [error] = checked(slack("{emoji}", event="SLACK_REACTION_ADDED"))
    assert "placeholder `{emoji}` has no value" in error


def hook(env: str = "HOOK_SECRET", scheme: str = "standard") -> str:
    return textwrap.dedent(
        f"""\
        name: Demo
        planner:
          triggers:
            - name: hook
              webhook: {{secret_env: {env}, scheme: {scheme}}}
              action: {{chat: {{template: hi}}}}
        """
    )


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({}, "secret $HOOK_SECRET is not set"),
        ({"HOOK_SECRET": "  "}, "secret $HOOK_SECRET is not set"),
        ({"HOOK_SECRET": "whsec_!!"}, "secret $HOOK_SECRET is not a Standard Webhooks secret"),
    ],
)
def test_a_webhook_secret_unset_in_this_environment_is_a_warning_at_its_line(
    env: dict[str, str], problem: str
) -> None:
    files = semantic.check_files([loader.load_text(hook(), F)])
    [warning] = semantic.secret_warnings(files, env)
    assert warning.render().startswith(
        f"{F}:5:29: planner.triggers[0].webhook.secret_env: {problem}"
    )
    assert "answered 503" in warning.message
    assert files[0].errors == ()


def test_a_set_webhook_secret_warns_nothing() -> None:
    files = semantic.check_files([loader.load_text(hook(scheme="github"), F)])
    assert semantic.secret_warnings(files, {"HOOK_SECRET": "anything goes for github"}) == []


def test_trigger_templates_must_still_parse() -> None:
    text = "name: Demo\nplanner:\n  triggers:\n    - name: hook\n      webhook: {secret_env: S}\n"
    text += "      action: {chat: {template: 'a } b'}}\n"
    assert checked(text) == [
        f"{F}:6:33: planner.triggers[0].action.chat.template: template: unmatched `}}` at "
        "column 3 (write `}}` for a literal brace)"
    ]


def test_every_error_of_a_file_is_reported_in_order() -> None:
    text = textwrap.dedent(
        """\
        name: Demo
        timezone: Nowhere/Land
        planner:
          jobs:
            - {name: a, schedule: 'bad', action: {chat: {template: '{x}'}}}
            - {name: a, schedule: '@daily', action: {chat: {template: 'ok'}}}
        """
    )
    found = [e.split(": ", 2)[:2] for e in checked(text)]
    assert found == [
        [f"{F}:2:11", "timezone"],
        [f"{F}:5:27", "planner.jobs[0].schedule"],
        [f"{F}:5:60", "planner.jobs[0].action.chat.template"],
        [f"{F}:6:14", "planner.jobs[1].name"],
    ]


# --- independence --------------------------------------------------------------------------


def test_a_broken_file_hides_nothing_of_the_others() -> None:
    results = load_many(
        alpha="name: Alpha\nplanner: {jobs: [{name: a, schedule: '@daily', "
        "action: {chat: {template: hi}}}]}\n",
        broken="name: [unclosed\n",
        gamma="name: Gamma\ntimezone: Europe/Berln\n",
        delta=b"name: caf\xe9\n".decode("latin-1"),
    )
    assert [r.file for r in results] == [
        "agents/alpha.yaml",
        "agents/broken.yaml",
        "agents/gamma.yaml",
        "agents/delta.yaml",
    ]
    assert results[0].ok
    assert results[0].agent is not None
    assert [j.name for j in results[0].agent.planner.jobs] == ["a"]
    assert results[1].errors[0].message.startswith("invalid YAML")
    assert results[2].errors[0].path == "timezone"
    assert results[3].ok  # latin-1 text re-encoded as UTF-8 is fine


def test_oversized_file_in_a_set_of_files() -> None:
    results = source.load(
        [
            source.SourceFile("agents/big.yaml", None, loader.MAX_FILE_BYTES + 10),
            source.SourceFile("agents/ok.yaml", b"name: Ok\n", 9),
        ]
    )
    assert [r.ok for r in results] == [False, True]
    assert results[0].errors[0].message.startswith("file is 1048586 bytes, over the")


@pytest.mark.parametrize("broken", ["", "[", "- a", "name: Demo\nname: x\n", "\t"])
def test_broken_file_does_not_claim_an_id(broken: str) -> None:
    """A file that failed to load takes part in no cross-file check."""
    results = load_many(alpha=broken, alpha_2="id: alpha\nname: Two\n")
    assert not results[0].ok
    assert results[1].ok
