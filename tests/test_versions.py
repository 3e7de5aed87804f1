"""The release table and version ordering: the gotchas that make arithmetic wrong."""

from __future__ import annotations

import pytest

from fieldsafe.versions import DeviceOSVersion, catalog, describe_module_version, format_release

V = DeviceOSVersion.parse


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("0.5.3", "0.5.3"),
        ("0.4.4-rc.6", "0.4.4-rc.6"),
        ("0.8.0-rc.14", "0.8.0-rc.14"),
        ("1.5.4-rc.2", "1.5.4-rc.2"),
        ("3.0.1-p2.1", "3.0.1-p2.1"),
        ("1.4.5-b5som.1", "1.4.5-b5som.1"),
        ("5.4.0+ledger", "5.4.0+ledger"),
        ("v6.2.1", "6.2.1"),
        (" V2.3.1 ", "2.3.1"),
    ],
)
def test_parse_every_form(text: str, canonical: str) -> None:
    assert str(V(text)) == canonical


@pytest.mark.parametrize("bad", ["", "6.2", "6.2.x", "latest", "01.2.3", "1.2.3-", "abc"])
def test_parse_rejects_with_clear_message(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a Device OS version"):
        V(bad)


def test_semver_ordering_rules() -> None:
    ordered = [
        "0.4.4-rc.6",
        "0.5.3",
        "0.8.0-rc.2",
        "0.8.0-rc.13",
        "0.8.0-rc.14",
        "0.8.0",
        "1.5.1-rc.1",
        "1.5.1-tracker.1",
        "1.5.1",
        "5.4.0",
        "5.4.0+ledger",
        "5.4.1",
        "6.3.4",
    ]
    assert sorted(ordered, key=V) == ordered
    assert V("1.2.0-alpha.1") < V("1.2.0-beta.1") < V("1.2.0-rc.1") < V("1.2.0")
    assert V("2.0.0-rc.2") < V("2.0.0-rc.10")  # numeric identifiers compare numerically
    assert V("v1.0.0") == V("1.0.0")


def test_lts_lines() -> None:
    assert V("2.3.1").lts and V("4.0.2").lts and V("6.3.4").lts
    assert not V("3.3.1").lts and not V("5.9.0").lts and not V("1.5.2").lts and not V("0.7.0").lts


@pytest.mark.parametrize(
    ("release", "module"),
    [
        ("2.3.1", 2302),
        ("4.0.2", 4006),
        ("4.0.0", 4003),
        ("6.3.0", 6302),
        ("6.3.2", 6303),
        ("6.3.3", 6304),
        ("6.3.4", 6305),
        ("5.9.0", 5901),
        ("5.9.0-rc.1", 5900),
        ("5.1.0", 5004),
        ("1.2.1", 1213),
        ("0.5.3", 21),
        ("0.8.0-rc.13", 312),
        ("0.8.0-rc.14", 312),
        ("1.5.1-rc.1", 1510),
        ("1.5.1-tracker.1", 1503),
    ],
)
def test_module_versions_come_from_the_table(release: str, module: int) -> None:
    assert catalog().module_version(release) == module


def test_ambiguous_module_versions_return_all_candidates_final_first() -> None:
    assert [str(r.version) for r in catalog().releases_for_module(312)] == ["0.8.0-rc.13", "0.8.0-rc.14"]
    assert [str(r.version) for r in catalog().releases_for_module(13)] == ["0.5.0", "0.5.0-rc.2"]
    assert len(catalog().releases_for_module(4)) == 6
    assert format_release(6303) == "6.3.2"  # the trap: 6303 is 6.3.2, not 6.3.3
    assert format_release(2302) == "2.3.1"
    assert format_release(4006) == "4.0.2"
    assert describe_module_version(9999) == "9999 (not in the Device OS release table)"


def test_min_release_for_a_dependency_prefers_final_release() -> None:
    assert str(catalog().min_release_for_dependency(1201, 10).version) == "1.2.0-beta.1"
    assert str(catalog().min_release_for_dependency(6101, 12).version) == "6.1.1"
    assert str(catalog().min_release_for_dependency(15, 6).version) == "0.5.1"
    assert catalog().min_release_for_dependency(65000, 13) is None


def test_platform_availability_and_inferred_rows() -> None:
    c = catalog()
    assert 32 not in c.release("6.1.1").platform_ids  # 6.1.1 excludes P2, M SoM, Tracker M
    assert 10 not in c.release("4.0.0").platform_ids  # Gen 2 dropped at 4.0.0
    r650 = c.release("6.5.0")
    assert r650.platforms_inferred and {13, 32, 35, 12} <= r650.platform_ids
    assert c.release("1.1.1").platforms_inferred and 13 in c.release("1.1.1").platform_ids
    assert all(r.version < V("3.3.2") for r in c.releases(10))


def test_resolve_pins() -> None:
    c = catalog()
    assert str(c.resolve("latest", 10)) == "3.3.1"
    assert str(c.resolve("latest-lts", 10)) == "2.3.1"
    assert str(c.resolve("default", 10)) == "2.3.1"
    assert str(c.resolve("^5.3.0", 13)) == "5.9.0"
    assert str(c.resolve("4.x", 13)) == "4.2.0"
    assert str(c.resolve("~6.3.0", 13)) == "6.3.4"
    assert str(c.resolve("v0.5.3", 10)) == "0.5.3"
    with pytest.raises(LookupError, match="not available for this platform; nearest"):
        c.resolve("6.1.1", 32)
    with pytest.raises(LookupError, match="not a known release"):
        c.resolve("9.9.9", 13)
    with pytest.raises(LookupError, match="not a Device OS version or range"):
        c.resolve("newest", 13)


def test_table_rows_are_complete() -> None:
    rows = catalog().rows
    assert len(rows) == 209
    assert rows == sorted(rows, key=lambda r: r.version)
    assert all(r.platform_ids for r in rows)
