"""Loading one file: every error renders exactly as ``file:line:col: path: message (hint)``.

One test per error class, each on a small inline document, asserting the whole rendered line:
the position is where an editor should put the cursor, the path is the field, and the hint says
what to do. Cases the fuzzer found are at the end, as plain regression tests.
"""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import pytest

from planner_operator.config import loader, positions
from planner_operator.reconcile import source

F = "agents/demo.yaml"


def rendered(text: str, file: str = F) -> list[str]:
    """Every error of ``text`` loaded as ``file``, rendered."""
    result = loader.load_text(textwrap.dedent(text), file)
    assert result.agent is None or not result.errors
    return [e.render() for e in result.errors]


def job(body: str) -> str:
    """A one-job agent whose job mapping is ``body`` (indented under the `- `)."""
    lines = textwrap.dedent(body).strip("\n").splitlines()
    item = "    - " + lines[0] + "".join("\n      " + line for line in lines[1:])
    return f"name: Demo\nplanner:\n  jobs:\n{item}\n"


def trigger(body: str) -> str:
    lines = textwrap.dedent(body).strip("\n").splitlines()
    item = "    - " + lines[0] + "".join("\n      " + line for line in lines[1:])
    return f"name: Demo\nplanner:\n  triggers:\n{item}\n"


CHAT = "action: {chat: {template: hi}}"


# --- a valid file --------------------------------------------------------------------------


def test_valid_file_loads_with_positions() -> None:
    text = job(f"name: daily\nschedule: '@daily'\n{CHAT}")
    result = loader.load_text(text, F)
    assert result.ok
    assert result.agent is not None
    assert result.agent.planner.jobs[0].name == "daily"
    assert result.agent_id == "demo"
    assert result.positions.key(("planner", "jobs", 0, "schedule")) == (5, 7)
    assert result.positions.value(("planner", "jobs", 0, "schedule")) == (5, 17)
    # A path with no position of its own falls back to its nearest parent.
    assert result.positions.value(("planner", "jobs", 0, "action", "nope")) == (6, 15)


def test_id_key_overrides_file_name() -> None:
    result = loader.load_text("id: sales\nname: Sales\n", "agents/whatever.yaml")
    assert result.ok
    assert result.agent_id == "sales"


# --- keys ----------------------------------------------------------------------------------


def test_unknown_key_suggests_the_close_one() -> None:
    assert rendered("name: Demo\nplaner: {}\n") == [
        f"{F}:2:1: planer: unknown key `planer` (did you mean `planner`?)"
    ]


def test_misspelt_required_key_is_one_error_not_two() -> None:
    """`schedul` is reported as a typo; the "missing `schedule`" it causes is not repeated."""
    assert rendered(job(f"name: daily\nschedul: '@daily'\n{CHAT}")) == [
        f"{F}:5:7: planner.jobs[0].schedul: unknown key `schedul` (did you mean `schedule`?)"
    ]


def test_unknown_key_without_a_close_match_lists_the_allowed_keys() -> None:
    assert rendered("name: Demo\ncolour: red\n") == [
        f"{F}:2:1: colour: unknown key `colour` (allowed here: `id`, `name`, `description`, "
        "`timezone`, `variables`, `mastra`, `planner`)"
    ]


def test_missing_key_says_what_to_add() -> None:
    assert rendered(job(f"name: daily\n{CHAT}")) == [
        f"{F}:4:7: planner.jobs[0].schedule: missing required key `schedule` "
        "(add it, e.g. `schedule: 0 9 * * 1`)"
    ]


def test_missing_model_key_lists_its_choices() -> None:
    assert rendered(job("name: daily\nschedule: '@daily'")) == [
        f"{F}:4:7: planner.jobs[0].action: missing required key `action` "
        "(add `action:` with `chat:` or `workflow:`)"
    ]


def test_missing_name_at_top_level() -> None:
    assert rendered("timezone: UTC\n") == [
        f"{F}:1:1: name: missing required key `name` (add it, e.g. `name: Job Application Agent`)"
    ]


def test_keys_must_be_text() -> None:
    assert rendered("name: Demo\n? [a, b]\n: x\n") == [
        f"{F}:2:3: keys must be plain text, not a list (write the key as a simple word, "
        "e.g. `name:`)"
    ]


def test_number_and_text_spellings_of_one_key_are_duplicates() -> None:
    assert rendered("name: Demo\nvariables:\n  1: a\n  '1': b\n") == [
        f"{F}:4:3: variables.1: duplicate key `1` (first defined on line 3) "
        "(each key may appear once in a mapping; remove or merge the repeats)"
    ]


# --- values --------------------------------------------------------------------------------


def test_wrong_type() -> None:
    assert rendered(job(f"name: daily\nschedule: '@daily'\nenabled: yes please\n{CHAT}")) == [
        f"{F}:6:16: planner.jobs[0].enabled: expected true/false, got text `yes please`"
    ]


def test_wrong_type_is_not_coerced() -> None:
    assert rendered("name: 5\n") == [f"{F}:1:7: name: expected text, got the number 5"]


def test_wrong_type_in_a_union_names_every_accepted_type() -> None:
    assert rendered("name: Demo\nvariables: {team: [a, b]}\n") == [
        f"{F}:2:19: variables.team: expected text, a number or true/false, got a list"
    ]


def test_bad_slug() -> None:
    assert rendered(job(f"name: Morning_Check\nschedule: '@daily'\n{CHAT}")) == [
        f"{F}:4:13: planner.jobs[0].name: `Morning_Check` is not a valid name "
        "(use lowercase letters, digits and dashes, at most 63 characters, e.g. `morning-check`)"
    ]


def test_bad_agent_id() -> None:
    assert rendered("id: Sales\nname: Sales\n") == [
        f"{F}:1:5: id: `Sales` is not a valid agent id "
        "(use lowercase letters, digits and dashes, at most 63 characters, e.g. `morning-check`)"
    ]


def test_bad_variable_name_points_at_the_key() -> None:
    assert rendered("name: Demo\nvariables: {1st: a}\n") == [
        f"{F}:2:13: variables.1st: `1st` is not a valid variable name "
        "(use letters, digits and `_`, not starting with a digit, e.g. `user_name`)"
    ]


def test_empty_text() -> None:
    assert rendered("name: ''\n") == [
        f"{F}:1:7: name: the value must not be empty (write a value or remove the key)"
    ]


def test_too_long_name() -> None:
    long = "a" * 64
    assert rendered(job(f"name: {long}\nschedule: '@daily'\n{CHAT}")) == [
        f"{F}:4:13: planner.jobs[0].name: the value is longer than 63 characters (shorten it)"
    ]


def test_enum_value_suggests_the_close_one() -> None:
    assert rendered(job(f"name: daily\nschedule: '@daily'\noverlap: skp\n{CHAT}")) == [
        f"{F}:6:16: planner.jobs[0].overlap: expected one of `allow`, `skip`, got text `skp` "
        "(did you mean `skip`?)"
    ]


def test_errors_come_in_file_order() -> None:
    text = job(f"name: Bad_Name\nschedule: 5\nenabled: 1\n{CHAT}") + "colour: red\n"
    lines = [e.split(": ", 1)[0] for e in rendered(text)]
    assert lines == [f"{F}:4:13", f"{F}:5:17", f"{F}:6:16", f"{F}:8:1"]


# --- actions, triggers, filters ------------------------------------------------------------


def test_action_with_both_chat_and_workflow() -> None:
    text = job(
        "name: daily\nschedule: '@daily'\naction:\n  chat: {template: hi}\n  workflow: {id: w}"
    )
    assert rendered(text) == [
        f"{F}:8:9: planner.jobs[0].action.workflow: an action needs exactly one of `chat` or "
        "`workflow`, not both (keep one and move the other into its own job or trigger)"
    ]


def test_action_with_neither() -> None:
    assert rendered(job("name: daily\nschedule: '@daily'\naction: {}")) == [
        f"{F}:6:15: planner.jobs[0].action: an action needs exactly one of `chat` or `workflow`, "
        "got neither (add `chat: {template: ...}` or `workflow: {id: ...}`)"
    ]


def test_webhook_mixed_with_composio_fields() -> None:
    text = trigger(f"name: t\ntoolkit: gmail\nconfig: {{a: 1}}\nwebhook: {{secret_env: S}}\n{CHAT}")
    assert rendered(text) == [
        f"{F}:5:7: planner.triggers[0].toolkit: a webhook trigger takes no Composio fields "
        "(remove `toolkit`, `config` or remove `webhook`)"
    ]


def test_connected_account_and_user_id_both() -> None:
    text = trigger(
        "name: t\ntoolkit: gmail\nevent: GMAIL_NEW_GMAIL_MESSAGE\n"
        f"connected_account: ca_1\nuser_id: me\n{CHAT}"
    )
    assert rendered(text) == [
        f"{F}:8:7: planner.triggers[0].user_id: a Composio trigger takes one of "
        "`connected_account` or `user_id`, not both (remove one of them)"
    ]


def test_connected_account_and_user_id_neither() -> None:
    text = trigger(f"name: t\ntoolkit: gmail\nevent: GMAIL_NEW_GMAIL_MESSAGE\n{CHAT}")
    assert rendered(text) == [
        f"{F}:4:7: planner.triggers[0]: a Composio trigger needs `connected_account` or "
        "`user_id` (add `connected_account: <id>` or `user_id: <id>`)"
    ]


def test_trigger_with_no_source() -> None:
    assert rendered(trigger(f"name: t\n{CHAT}")) == [
        f"{F}:4:7: planner.triggers[0]: a trigger needs `toolkit` and `event` (a Composio "
        "trigger) or `webhook`, missing `toolkit` and `event` (add `toolkit:` and `event:`, or "
        "use `webhook: {secret_env: ...}` for a generic webhook)"
    ]


def test_webhook_scheme_and_secret_env() -> None:
    text = trigger(f"name: t\nwebhook: {{secret_env: my_secret, scheme: gitlab}}\n{CHAT}")
    assert rendered(text) == [
        f"{F}:5:29: planner.triggers[0].webhook.secret_env: `my_secret` is not a valid "
        "environment variable name (use capitals, digits and `_`, e.g. `MY_WEBHOOK_SECRET`)",
        f"{F}:5:48: planner.triggers[0].webhook.scheme: expected one of `standard`, `github`, "
        "got text `gitlab` (did you mean `github`?)",
    ]


def _filtered(condition: str) -> str:
    return trigger(
        "name: t\ntoolkit: gmail\nevent: GMAIL_NEW_GMAIL_MESSAGE\nuser_id: me\n"
        f"filter:\n  any:\n    - sender: {condition}\n{CHAT}"
    )


def test_filter_condition_with_two_operators() -> None:
    assert rendered(_filtered("{equals: a, contains: b}")) == [
        f"{F}:10:33: planner.triggers[0].filter.any[0].sender.contains: a condition takes "
        "exactly one operator, got `equals` and `contains` (to test several things, list one "
        "condition per item under `all:`)"
    ]


def test_filter_condition_with_no_operator() -> None:
    assert rendered(_filtered("{}")) == [
        f"{F}:10:21: planner.triggers[0].filter.any[0].sender: a condition needs an operator "
        "(use one of `equals`, `contains`, `in`, `exists`)"
    ]


def test_filter_condition_with_a_misspelt_operator() -> None:
    assert rendered(_filtered("{equal: a}")) == [
        f"{F}:10:22: planner.triggers[0].filter.any[0].sender.equal: unknown key `equal` "
        "(did you mean `equals`?)"
    ]


def test_filter_condition_that_is_not_a_mapping() -> None:
    assert rendered(_filtered("bob")) == [
        f"{F}:10:21: planner.triggers[0].filter.any[0].sender: expected a mapping (key: value), "
        "got text `bob`"
    ]


# --- YAML itself ---------------------------------------------------------------------------


def test_duplicate_key() -> None:
    assert rendered("name: Demo\ntimezone: UTC\nname: Other\n") == [
        f"{F}:3:1: name: duplicate key `name` (first defined on line 1) "
        "(each key may appear once in a mapping; remove or merge the repeats)"
    ]


def test_duplicate_key_nested_names_its_path() -> None:
    text = job(f"name: daily\nschedule: '@daily'\nschedule: '@hourly'\n{CHAT}")
    assert rendered(text) == [
        f"{F}:6:7: planner.jobs[0].schedule: duplicate key `schedule` (first defined on line 5) "
        "(each key may appear once in a mapping; remove or merge the repeats)"
    ]


def test_tab_indentation() -> None:
    assert rendered("name: Demo\nplanner:\n\tjobs: []\n") == [
        f"{F}:3:1: invalid YAML: a tab in this line's indentation (indent with spaces, not tabs)"
    ]


def test_tab_after_a_plain_scalar_says_tab_not_scanning() -> None:
    text = job(f"name: daily\nschedule: '@daily'\n{CHAT}") + "\t  more\n"
    assert rendered(text) == [
        f"{F}:7:1: invalid YAML: a tab in this line's indentation (indent with spaces, not tabs)"
    ]


def test_unclosed_quote_before_a_later_quote_is_not_an_indentation_error() -> None:
    text = job('name: daily\nschedule: "0 9 * * *\naction:\n  chat:\n    template: "hello"')
    assert rendered(text) == [
        f'{F}:5:17: invalid YAML: the quote (") opened here is not closed on this line '
        "(close it on the same line; for text on several lines use `|` (e.g. `template: |` and "
        "the text indented below it))"
    ]


def test_a_valid_quoted_scalar_over_several_lines_is_not_blamed() -> None:
    text = 'name: "Demo\n  agent"\nplanner:\n  jobs: []\n   triggers: []\n'
    assert rendered(text)[0].startswith(f"{F}:5:4: invalid YAML: this line's indentation")


def test_unquoted_template_starting_with_a_brace_says_quote_it() -> None:
    text = job("name: daily\nschedule: '@daily'\naction:\n  chat:\n    template: {who} said hi")
    assert rendered(text) == [
        f"{F}:8:21: invalid YAML: the value of `template` starts with `{{`, so YAML reads it as "
        'a mapping (quote the whole value: `template: "{who} said hi"`)'
    ]


def test_template_that_is_only_a_placeholder_says_quote_it() -> None:
    text = job("name: daily\nschedule: '@daily'\naction:\n  chat:\n    template: {text}")
    assert rendered(text) == [
        f"{F}:8:21: planner.jobs[0].action.chat.template: expected text, got a mapping "
        '(quote it: YAML reads an unquoted `{...}` as a mapping, e.g. `template: "{text}"`)'
    ]


def test_empty_jobs_suggests_an_empty_list() -> None:
    assert rendered("name: Demo\nplanner:\n  jobs:\n") == [
        f"{F}:3:8: planner.jobs: expected a list, got nothing (null) "
        "(write `jobs: []` for none, or list the items under it with `- `)"
    ]


def test_unclosed_quote_says_where_it_opened() -> None:
    assert rendered("name: 'Demo\nplanner: {}\n") == [
        f"{F}:1:7: invalid YAML: the quote (') opened here is not closed on this line "
        "(close it on the same line; for text on several lines use `|` (e.g. `template: |` and "
        "the text indented below it))"
    ]


def test_bad_indentation() -> None:
    assert rendered("name: Demo\nplanner:\n  jobs: []\n   triggers: []\n") == [
        f"{F}:4:4: invalid YAML: this line's indentation does not match the block that started "
        "on line 3, column 3 (indent the keys of one mapping, and the items of one list, by the "
        "same number of spaces)"
    ]


def test_colon_in_a_plain_value() -> None:
    assert rendered("name: Demo\ndescription: note: this\n") == [
        f"{F}:2:18: invalid YAML: mapping values are not allowed here "
        "(check the indentation, or quote a value that contains `: `)"
    ]


def test_second_document() -> None:
    assert rendered("name: Demo\n---\nname: Other\n") == [
        f"{F}:2:1: invalid YAML: a second YAML document (`---`) in the file "
        "(an agent file holds one YAML document: remove the `---` line or split the file)"
    ]


def test_value_yaml_cannot_build() -> None:
    assert rendered("name: Demo\ndescription: 2001-02-30\n") == [
        f"{F}:2:14: description: invalid value `2001-02-30`: day is out of range for month "
        "(check dates (YYYY-MM-DD) and tagged values; quote a value to keep it as text)"
    ]


def test_dates_are_kept_as_text() -> None:
    result = loader.load_text("name: Demo\ndescription: 2026-01-31\n", F)
    assert result.agent is not None
    assert result.agent.description == "2026-01-31"


def test_custom_tag_on_a_value() -> None:
    assert rendered("name: !secret demo\n") == [
        f"{F}:1:7: name: custom YAML tag `!secret` is not supported "
        "(remove the tag; agent files are plain YAML)"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "name: Demo\nvariables: !env [a]\n",
            f"{F}:2:12: variables: custom YAML tag `!env` is not supported "
            "(remove the tag; agent files are plain YAML)",
        ),
        (
            "name: Demo\nplanner: !planner {}\n",
            f"{F}:2:10: planner: custom YAML tag `!planner` is not supported "
            "(remove the tag; agent files are plain YAML)",
        ),
        (
            "name: !!python/name:os.system\n",
            f"{F}:1:7: name: custom YAML tag `!!python/name:os.system` is not supported "
            "(remove the tag; agent files are plain YAML)",
        ),
        (
            "name: Demo\nvariables: !!omap [a: 1]\n",
            f"{F}:2:12: variables: ordered maps (!!omap) are not supported (use a plain mapping)",
        ),
        (
            "name: Demo\nvariables: !!set {a}\n",
            f"{F}:2:12: variables: sets (!!set) are not supported (use a list)",
        ),
        (
            "name: !!binary aGk=\n",
            f"{F}:1:7: name: binary (!!binary) values are not supported (use plain text)",
        ),
    ],
)
def test_custom_tags_on_collections_and_special_types(text: str, expected: str) -> None:
    """Regression: a tagged sequence and `!!omap` crashed conversion (found by fuzzing)."""
    assert rendered(text) == [expected]


def test_standard_str_tag_is_text() -> None:
    result = loader.load_text("name: !!str 1234\n", F)
    assert result.agent is not None
    assert result.agent.name == "1234"


def test_merge_keys_work_and_keep_positions() -> None:
    """Regression: a `<<:` merge crashed conversion with KeyError (found by fuzzing)."""
    text = textwrap.dedent(
        """\
        name: Demo
        variables:
          <<: &shared {team: platform, region: eu}
          region: us
        planner:
          jobs:
            - &base
              name: a
              schedule: '@daily'
              action: {chat: {template: hi}}
            - <<: *base
              name: b
        """
    )
    result = loader.load_text(text, F)
    assert result.ok, result.errors
    assert result.agent is not None
    assert dict(result.agent.variables) == {"region": "us", "team": "platform"}
    assert [j.name for j in result.agent.planner.jobs] == ["a", "b"]
    # A merged key is placed where it is written in the anchored mapping.
    assert result.positions.key(("planner", "jobs", 1, "schedule")) == (9, 7)
    assert result.positions.key(("planner", "jobs", 1, "name")) == (12, 7)


def test_merged_key_error_points_into_the_anchor() -> None:
    text = "name: Demo\nbase: &b {colour: red}\n<<: *b\n"
    assert rendered(text)[1] == (
        f"{F}:2:11: colour: unknown key `colour` (allowed here: `id`, `name`, `description`, "
        "`timezone`, `variables`, `mastra`, `planner`)"
    )


# --- whole-file problems -------------------------------------------------------------------


def test_empty_file() -> None:
    expected = [
        f"{F}:1:1: file is empty "
        "(an agent file needs at least `name:`; delete the file to remove the agent)"
    ]
    assert rendered("") == expected
    assert rendered("# only a comment\n") == expected
    assert rendered("---\n...\n") == expected


def test_top_level_list() -> None:
    assert rendered("- name: Demo\n") == [
        f"{F}:1:1: the file is a list, not a mapping "
        "(an agent file is a mapping with `name:` and `planner:` at the top level)"
    ]


def test_top_level_scalar() -> None:
    assert rendered("just text\n") == [
        f"{F}:1:1: the file is a single value, not a mapping "
        "(an agent file is a mapping with `name:` and `planner:` at the top level)"
    ]


def test_non_utf8_bytes() -> None:
    result = loader.load_bytes(b"name: Demo\ndescription: caf\xe9\n", F)
    assert [e.render() for e in result.errors] == [
        f"{F}:2:17: file is not UTF-8 text (byte 0xe9 cannot be decoded) (save the file as UTF-8)"
    ]


def test_utf8_byte_order_mark_is_fine() -> None:
    assert loader.load_bytes("\ufeffname: Demo\n".encode(), F).ok


OVERSIZED = (
    f"{F}:1:1: file is 1048577 bytes, over the 1048576-byte limit for an agent file "
    "(split it into one file per agent)"
)


def test_oversized_bytes() -> None:
    data = b"name: Demo\n" + b"#" * (loader.MAX_FILE_BYTES - 11 + 1)
    assert [e.render() for e in loader.load_bytes(data, F).errors] == [OVERSIZED]


def test_oversized_file_on_disk_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (loader.MAX_FILE_BYTES + 1))
    assert [e.render() for e in loader.load_path(path, display=F).errors] == [OVERSIZED]
    read = source.read_paths([path])
    assert read[0].data is None
    assert read[0].size == loader.MAX_FILE_BYTES + 1


def test_file_of_exactly_the_limit_is_read() -> None:
    data = b"name: Demo\n" + b"#" * (loader.MAX_FILE_BYTES - 11)
    assert loader.load_bytes(data, F).ok


def test_unreadable_path_is_an_error(tmp_path: Path) -> None:
    result = loader.load_path(tmp_path / "missing.yaml", display=F)
    assert [e.render() for e in result.errors] == [
        f"{F}:1:1: cannot read file: No such file or directory"
    ]


def test_alias_bomb() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdef", "bcdefg", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    assert rendered("\n".join(lines) + "\n") == [
        f"{F}:5:4: e: the file expands to more than 100000 values (YAML aliases such as "
        "`*name` repeating large blocks? remove the aliases or split the file)"
    ]


def test_deep_flow_nesting_is_refused_quickly() -> None:
    assert rendered("name: Demo\nvariables: " + "[" * 50_000 + "\n") == [
        f"{F}:2:112: nested more than 100 levels deep (flatten the structure)"
    ]


def test_braces_in_text_do_not_count_as_nesting() -> None:
    lines = "".join(f"  v{i}: use {{{{ or [[ for brackets\n" for i in range(300))
    assert loader.load_text(f"name: Demo\nvariables:\n{lines}", F).ok


def test_deep_block_nesting() -> None:
    text = "".join(" " * i + f"k{i}:\n" for i in range(70)) + " " * 70 + "x: 1\n"
    assert rendered(text) == [
        f"{F}:66:66: k0: nested more than 64 levels deep (flatten the structure)"
    ]


def test_too_many_errors_are_cut_short() -> None:
    text = "name: Demo\n" + "".join(f"k{i}: 1\n" for i in range(300))
    errors = rendered(text)
    assert len(errors) == loader.MAX_ERRORS + 1
    assert errors[-1] == (
        f"{F}:101:1: too many errors; only the first 100 are shown (fix these and validate again)"
    )


# --- paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), ""),
        (("planner",), "planner"),
        (("planner", "jobs", 0, "name"), "planner.jobs[0].name"),
        (("variables", "a.b"), "variables.a.b"),
        ((0, 1, "x"), "[0][1].x"),
    ],
)
def test_dotted(path: positions.Path, text: str) -> None:
    assert positions.dotted(path) == text


# --- found by fuzzing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # TypeError: a single-pair mapping inside a flow sequence had no item positions.
        # (libyaml, unlike ruamel's pure parser, rejects the `:` inside the flow sequence.)
        (
            "- [\n<<: {a:---\n 1}\n]\n- []\n- '}}'\n",
            f"{F}:2:7: invalid YAML: found unexpected ':' (while scanning a plain scalar that "
            "started on line 2, column 6) (check the indentation and quoting around this line)",
        ),
        # KeyError: keys merged in by `<<:` have no position of their own.
        (
            "\n<<: {a: 1}\nname: Demo\n",
            f"{F}:2:6: a: unknown key `a` (allowed here: `id`, `name`, `description`, "
            "`timezone`, `variables`, `mastra`, `planner`)",
        ),
        # ReusedAnchorWarning escaped (an error under `-W error`, noise on stderr otherwise).
        # libyaml refuses a reused anchor outright; the message says how to fix it.
        (
            "&a {&a }\n&a {&a }\n",
            f"{F}:1:5: invalid YAML: anchor defined twice (first on line 1) "
            "(give each `&anchor` its own name)",
        ),
    ],
)
def test_fuzz_regressions(text: str, expected: str) -> None:
    assert rendered(text) == [expected]


def test_reused_anchor_is_an_error_not_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rendered("&a name: Demo\n&a planner: {}\n") == [
            f"{F}:2:1: invalid YAML: anchor defined twice (first on line 1) "
            "(give each `&anchor` its own name)"
        ]
