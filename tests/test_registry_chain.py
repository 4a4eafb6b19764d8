"""The registry's hash chain: an event changed, deleted or rewritten in the results database shows in
`harness registry --verify`, and a head kept outside the database catches a history rewritten with its hashes
recomputed. Written through the real Store, tampered with through duckdb as the database's owner would."""

from __future__ import annotations

import duckdb
import pytest
from conftest import printed

from harness.cli import main
from harness.core.records import AdapterEvent
from harness.store.chain import GENESIS, HEAD_CHARS, relink
from harness.store.database import Store


@pytest.fixture()
def registry(tmp_path) -> Store:
    store = Store(tmp_path / "harness.duckdb")
    store.record_adapter_events([AdapterEvent("s/1", "colours", "staging", "candidate", "promote", "ada",
                                              gate={"passed": True, "rules": [{"name": "objective", "ok": True}]})])
    store.record_adapter_events([AdapterEvent("s/1", "colours", "production", "staging", "promote", "ada",
                                              note="signed off")])
    store.record_adapter_events([AdapterEvent("s/2", "colours", "production", "candidate", "promote", "bo"),
                                 AdapterEvent("s/1", "colours", "retired", "production", "retire", "bo")])
    return store


def _verify(store: Store, capsys, *more: str) -> tuple[int, str]:
    code = main(["registry", "--verify", "--db", str(store.path), *more])
    return code, " ".join(printed(capsys).split())


def _edit(store: Store, sql: str, *args) -> None:
    with duckdb.connect(str(store.path)) as conn:
        conn.execute(sql, list(args))


def test_an_untouched_registry_verifies_and_names_its_head(registry, capsys):
    check = registry.registry_chain()
    assert check.intact and check.events == 4 and check.head != GENESIS
    code, out = _verify(registry, capsys, "--head", check.head[:HEAD_CHARS])
    assert code == 0, out
    assert f"4 registry events, hash chain intact, head {check.head[:HEAD_CHARS]}" in out


def test_an_event_edited_in_the_database_is_named(registry, capsys):
    # the approver of the production promotion, changed after the fact
    _edit(registry, "UPDATE adapter_events SET actor = 'mallory' WHERE id = (SELECT min(id) + 1 FROM adapter_events)")
    second = sorted(e for e, in duckdb.connect(str(registry.path), read_only=True).execute(
        "SELECT id FROM adapter_events").fetchall())[1]
    code, out = _verify(registry, capsys)
    assert code == 1
    assert f"registry event {second} does not match its hash: it was changed after it was written" in out


def test_a_deleted_event_breaks_the_chain_at_the_next_one(registry, capsys):
    ids = [i for i, in duckdb.connect(str(registry.path), read_only=True).execute(
        "SELECT id FROM adapter_events ORDER BY id").fetchall()]
    _edit(registry, "DELETE FROM adapter_events WHERE id = ?", ids[1])  # the production promotion, gone
    code, out = _verify(registry, capsys)
    assert code == 1 and f"registry event {ids[2]} does not match its hash" in out


def test_a_history_rewritten_with_its_hashes_recomputed_fails_against_a_head_kept_elsewhere(registry, capsys):
    kept = registry.registry_chain().head
    _edit(registry, "UPDATE adapter_events SET note = 'no sign-off needed' WHERE note = 'signed off'")
    with duckdb.connect(str(registry.path)) as conn:  # the owner recomputes every hash, with the harness's own code
        relink(conn)
    assert _verify(registry, capsys)[0] == 0  # consistent with itself: the database alone cannot tell
    code, out = _verify(registry, capsys, "--head", kept[:HEAD_CHARS])
    assert code == 1 and f"does not hold the head {kept[:HEAD_CHARS]}: its history was rewritten" in out


def test_new_events_extend_the_chain_and_an_older_head_stays_held(registry, capsys):
    kept = registry.registry_chain().head
    registry.record_adapter_events([AdapterEvent("s/2", "colours", "production", "production", "recheck", "cy")])
    check = registry.registry_chain()
    assert check.intact and check.events == 5 and check.head != kept and check.holds(kept)


def test_events_written_before_the_chain_are_chained_by_the_upgrade(registry, capsys):
    """A database from the release before: no chain column, m022 not applied. The upgrade chains its events as they
    stand, and new events extend that chain."""
    _edit(registry, "ALTER TABLE adapter_events DROP COLUMN chain_sha256")
    _edit(registry, "DELETE FROM _migrations WHERE name = 'm022_registry_hash_chain'")
    upgraded = Store(registry.path)
    assert upgraded.registry_chain().intact and upgraded.registry_chain().events == 4
    upgraded.record_adapter_events([AdapterEvent("s/2", "colours", "retired", "production", "withdraw", "cy")])
    assert _verify(upgraded, capsys)[0] == 0


@pytest.mark.parametrize("head, why", [("3f2a", "12 to 64 characters"), ("zz" * 8, "hexadecimal")])
def test_a_head_that_is_not_a_hash_is_refused_with_the_fix(registry, capsys, head, why):
    code, out = _verify(registry, capsys, "--head", head)
    assert code == 2 and why in out


def test_head_without_verify_says_to_add_it(registry, capsys):
    assert main(["registry", "--head", "0" * 16, "--db", str(registry.path)]) == 2
    assert "`harness registry --verify --head HASH`" in printed(capsys)


def test_audit_verify_with_the_database_catches_a_registry_rewritten_after_the_pack(registry, tmp_path):
    """The pack records the registry's head when it was written; `audit --verify --db` checks the database still holds
    it, and that the chain is intact."""
    import json

    from harness.lifecycle.audit import registry_problem

    pack = tmp_path / "pack"
    pack.mkdir()
    head = registry.registry_chain().head
    (pack / "record.json").write_text(json.dumps({"registry_chain": {"events": 4, "head_sha256": head}}))
    assert registry_problem(pack, registry) is None
    registry.record_adapter_events([AdapterEvent("s/2", "colours", "production", "production", "recheck", "cy")])
    assert registry_problem(pack, registry) is None  # a later event extends the history the pack saw
    _edit(registry, "UPDATE adapter_events SET actor = 'mallory' WHERE actor = 'ada'")
    assert "does not match its hash" in registry_problem(pack, registry)
    (pack / "record.json").write_text(json.dumps({"registry_chain": {"events": 4, "head_sha256": "ab" * 32}}))
    _edit(registry, "UPDATE adapter_events SET actor = 'ada' WHERE actor = 'mallory'")
    assert "no longer holds the head abababababababab" in registry_problem(pack, registry)


def test_a_move_is_not_recorded_when_production_changed_since_it_was_read(registry):
    """Two leads promoted at once: each gate weighed its candidate against the production it read, and the second
    write retired an adapter its gate had never seen. The move is recorded only if production is still as read."""
    from harness.store.database import ProductionMoved

    before = registry.adapter_events()
    assert registry.production("colours") == "s/2"
    with pytest.raises(ProductionMoved, match=r"suite colours's production adapter changed while this ran: it was "
                                              r"s/1, and another promote or rollback made it s/2. Nothing was"):
        registry.record_adapter_events([AdapterEvent("s/3", "colours", "production", "candidate", "promote", "cy")],
                                       production_was=("colours", "s/1"))
    assert registry.adapter_events() == before
    registry.record_adapter_events([AdapterEvent("s/3", "colours", "production", "candidate", "promote", "cy"),
                                    AdapterEvent("s/2", "colours", "retired", "production", "retire", "cy")],
                                   production_was=("colours", "s/2"))
    assert registry.production("colours") == "s/3"


def test_verify_with_a_suite_says_it_checks_the_whole_database(registry, capsys):
    """`registry --verify --suite triage` ignored --suite and reported every suite's events without a word."""
    assert main(["registry", "--verify", "--suite", "colours", "--db", str(registry.path)]) == 2
    assert "--verify checks the whole database: one hash chain holds every suite's history" in " ".join(
        printed(capsys).split())
