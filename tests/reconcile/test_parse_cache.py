"""The parse cache: a cached load equals a cold load, whatever was edited, and parses only what
changed (issue 20: a no-op reconcile re-parsed every file)."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import git
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from planner_operator.config import desired
from planner_operator.config.loader import LoadedFile
from planner_operator.core.settings import Settings
from planner_operator.reconcile import parsecache, source
from planner_operator.reconcile.engine import SourceSpec, read_desired
from planner_operator.reconcile.plan import PlanOptions
from planner_operator.reconcile.watch import run_cycle
from planner_operator.state import open as state_open

NAMES = ["a.yaml", "b.yaml", "c.yml", "Bad_Name.yaml"]
GOOD = (
    "name: Agent {n}\nvariables: {{team: t{n}}}\n"
    "planner:\n  jobs:\n    - name: daily\n      schedule: '{cron}'\n"
    "      action: {{chat: {{template: 'hi {{team}}'}}}}\n"
    "  triggers:\n    - name: mail\n      toolkit: gmail\n      event: GMAIL_NEW_GMAIL_MESSAGE\n"
    "      connected_account: ca_{n}\n      action: {{chat: {{template: 'from {{sender}}'}}}}\n"
)
TEXTS: list[bytes] = [
    GOOD.format(n=1, cron="0 9 * * 1").encode(),
    GOOD.format(n=2, cron="*/5 * * * *").encode(),
    ("id: shared\n" + GOOD.format(n=3, cron="@daily")).encode(),  # an id two files may take
    ("id: shared\n" + GOOD.format(n=4, cron="0 0 * * *")).encode(),
    GOOD.format(n=5, cron="61 9 * * *").encode(),  # semantic: minute out of range
    GOOD.format(n=6, cron="0 9 * * 1").replace("hi {team}", "hi {nobody}").encode(),
    b"name: x\ntimezone: Europe/Berln\nplanner: {jobs: []}\n",  # unknown timezone
    b"name: x\nplanner:\n  jobs:\n    - name: j\n      schedul: '0 9 * * *'\n",  # unknown key
    b"name: [unclosed\n",  # YAML error
    b"name: 'open quote\nplanner: {}\n",
    b"- a list\n",
    b"",  # empty
    b"name: caf\xe9\n",  # not UTF-8
    b"name: a\nname: b\n",  # duplicate key
    GOOD.format(n=7, cron="0 9 * * 1")
    .replace("GMAIL_NEW_GMAIL_MESSAGE", "GMAIL_NOT_A_TRIGGER")
    .encode(),
    GOOD.format(n=8, cron="@hourly")  # a toolkit the catalog does not cover: a warning
    .replace("toolkit: gmail", "toolkit: zendeskish")
    .replace("GMAIL_NEW_GMAIL_MESSAGE", "ZENDESKISH_NEW_TICKET")
    .encode(),
    b"name: Dates\ndescription: 2026-01-01\n"
    b"variables: {x: 1.0, y: 1, z: -0.0, big: 123456789012345678901234}\n",
]

Edit = tuple[str, int | None]  # (file name, index into TEXTS; None deletes it)


def observable(files: Sequence[LoadedFile]) -> list[Any]:
    """Everything a load tells its callers, for comparing cached and cold loads."""
    out: list[Any] = []
    for f in files:
        out.append(
            (
                f.file,
                f.ok,
                f.agent_id,
                f.agent.model_dump(mode="python") if f.agent is not None else None,
                f.agent.model_fields_set if f.agent is not None else None,
                [(type(e), str(e), e.message, e.position, e.path, e.hint) for e in f.errors],
                [(type(e), str(e), e.message, e.position, e.path, e.hint) for e in f.warnings],
                f.positions.keys,
                f.positions.values,
            )
        )
    resources = desired.build(files)
    out.append({k: (r.source, r.line, r.spec, r.spec_hash) for k, r in resources.items()})
    return out


def write(directory: Path, edit: Edit) -> None:
    name, text = edit
    path = directory / name
    if text is None:
        path.unlink(missing_ok=True)
    else:
        path.write_bytes(TEXTS[text])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(
        st.tuples(
            st.sampled_from(NAMES),
            st.one_of(st.none(), st.integers(min_value=0, max_value=len(TEXTS) - 1)),
        ),
        min_size=1,
        max_size=10,
    ),
    reopen=st.booleans(),
)
# two files take one id (the second is an error), then the first lets it go: the second's kept
# result must not carry the duplicate, which only the checks across files decide
@example(edits=[("a.yaml", 2), ("b.yaml", 3), ("a.yaml", 0)], reopen=False)
def test_a_cached_load_equals_a_cold_load_after_any_edits(edits: list[Edit], reopen: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        agents = Path(tmp) / "agents"
        agents.mkdir()
        store_settings = Settings.resolve(state_dir=Path(tmp) / "state", env={})
        with state_open.parse_cache(store_settings) as store:
            cache = parsecache.FileCache(store)
            for edit in edits:
                write(agents, edit)
                files = source.read_worktree(agents).files
                cold = source.load(files)
                if reopen:  # a new process: a new handle on the same store
                    cache = parsecache.FileCache(store)
                warm = source.load(files, cache)
                assert observable(warm) == observable(cold)
                again = source.load(files, cache)  # now every file comes from the cache
                assert cache.parsed == ()
                assert observable(again) == observable(cold)


def test_one_edit_reparses_only_that_file(tmp_path: Path) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    for n, name in enumerate(NAMES[:3]):
        (agents / name).write_bytes(TEXTS[n])
    spec = SourceSpec(path=agents)
    with state_open.parse_cache(Settings.resolve(state_dir=tmp_path, env={})) as store:
        cache = parsecache.FileCache(store)
        first = read_desired(spec, cache=cache)
        assert len(cache.parsed) == 3 and len(first.resources) == 6
        assert read_desired(spec, cache=cache).resources == first.resources
        assert not cache.parsed and cache.reused == 3
        (agents / "b.yaml").write_bytes(TEXTS[4])
        edited = read_desired(spec, cache=cache)
        assert list(cache.parsed) == [str(agents / "b.yaml")] and cache.reused == 2
        assert [str(e) for e in edited.errors] == [
            str(e) for e in read_desired(spec).errors
        ] and edited.errors


def test_a_watch_cycle_after_one_change_parses_only_that_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    for n, name in enumerate(NAMES[:3]):
        (agents / name).write_bytes(TEXTS[n])
    state = Settings.resolve(state_dir=tmp_path / "state", env={})
    spec = SourceSpec(path=agents)
    with caplog.at_level(logging.DEBUG, logger="planner_operator.reconcile"):
        assert run_cycle(spec, state, PlanOptions(), "start").ok
        (agents / "a.yaml").write_bytes(TEXTS[0].replace(b"0 9 * * 1", b"0 10 * * 1"))
        cycle = run_cycle(spec, state, PlanOptions(), "files")
    assert cycle.ok and "1 update" in cycle.summary
    parsed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("parsed ")]
    assert parsed == [
        "parsed 3 file(s), 0 from the parse cache",
        "parsed 1 file(s), 2 from the parse cache",
    ]


def test_a_revision_and_the_same_work_tree_share_entries(tmp_path: Path) -> None:
    """Entries are keyed by git blob id: a PR's revision reuses what the work tree parsed."""
    repo = git.Repo.init(tmp_path / "repo")
    agents = tmp_path / "repo" / "agents"
    agents.mkdir()
    for n, name in enumerate(NAMES[:2]):
        (agents / name).write_bytes(TEXTS[n])
    repo.index.add([str(agents / n) for n in NAMES[:2]])
    repo.index.commit("agents")
    repo.close()
    with state_open.parse_cache(Settings.resolve(state_dir=tmp_path / "s", env={})) as store:
        cache = parsecache.FileCache(store)
        from_git = source.read_git(tmp_path / "repo", "HEAD", "agents")
        source.load(from_git.files, cache)
        assert len(cache.parsed) == 2
        blobs = [parsecache.blob_id(f.data or b"") for f in from_git.files]
        with git.Repo(tmp_path / "repo") as opened:
            tree = opened.commit("HEAD").tree / "agents"
            assert blobs == [b.hexsha for b in sorted(tree.blobs, key=lambda b: b.path)]
        # the same bytes under the same names (``agents/a.yaml``, as the revision shows them)
        same = [source.SourceFile(f.display, f.data, f.size) for f in from_git.files]
        source.load(same, cache)
        assert not cache.parsed


def test_another_loader_version_parses_again(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_bytes(TEXTS[0])
    files = source.read_worktree(tmp_path).files
    with state_open.parse_cache(Settings.resolve(state_dir=tmp_path / "s", env={})) as store:
        source.load(files, parsecache.FileCache(store, version="one"))
        newer = parsecache.FileCache(store, version="two")
        source.load(files, newer)
        assert len(newer.parsed) == 1
        older = parsecache.FileCache(store, version="one")
        source.load(files, older)  # version two's write dropped version one's rows
        assert len(older.parsed) == 1
    version = parsecache.loader_version()
    assert version == parsecache.loader_version() and len(version) == 32


def test_a_corrupt_entry_is_loaded_cold_and_rewritten(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a.yaml").write_bytes(TEXTS[0])
    files = source.read_worktree(tmp_path).files
    with state_open.parse_cache(Settings.resolve(state_dir=tmp_path / "s", env={})) as store:
        cache = parsecache.FileCache(store)
        cold = source.load(files, cache)
        key = cache.key(files[0])
        assert key is not None
        for garbage in ("{not json", '{"format": 1, "file": "other.yaml"}', '{"format": 99}'):
            store.put(cache.version, {key: garbage})
            with caplog.at_level(logging.WARNING):
                again = source.load(files, cache)
            assert cache.parsed == (files[0].display,)
            assert observable(again) == observable(cold)
            assert "loading it again" in caplog.text
        source.load(files, cache)
        assert cache.parsed == ()  # the good record was written back


def test_a_cache_that_cannot_be_opened_only_costs_a_cold_load(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "a.yaml").write_bytes(TEXTS[0])
    state = Settings.resolve(state_dir=tmp_path / "state", env={})
    state.parse_cache_db.mkdir(parents=True)  # a directory where the file should be
    with caplog.at_level(logging.WARNING):
        cycle = run_cycle(SourceSpec(path=agents), state, PlanOptions(), "start")
    assert cycle.ok and "2 create" in cycle.summary
    assert "parse cache unavailable" in caplog.text


def test_a_file_still_changing_is_never_answered_from_the_cache(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_bytes(TEXTS[0])
    [settled] = source.read_worktree(tmp_path).files
    torn = source.SourceFile(settled.display, settled.data, settled.size, unsettled=1.0)
    with state_open.parse_cache(Settings.resolve(state_dir=tmp_path / "s", env={})) as store:
        cache = parsecache.FileCache(store)
        assert source.load([settled], cache)[0].ok
        [loaded] = source.load([torn], cache)
        assert not loaded.ok and "kept changing" in str(loaded.errors[0])
        assert source.load([settled], cache)[0].ok and not cache.parsed
