"""fieldsafe.fleet + fleetfindings: the histogram, the floor, the impact of a pin, the fixes, FS5xx findings."""

from __future__ import annotations

import datetime as dt

import pytest

from fieldsafe import delivery, fleet, fleetfindings, policy
from fieldsafe.findings import Severity, Span
from fieldsafe.releases import ProductReleases
from fieldsafe.versions import catalog

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC).timestamp()
BORON = 13
ELECTRON = 10


def raw(release: str | None, **extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "id": extra.pop("id", "x"),
        "platform_id": extra.pop("platform_id", BORON),
        "system_firmware_version": release,
        "cellular": True,
        "last_heard": "2026-12-01T08:00:00.000Z",
        "development": False,
        "groups": [],
        "firmware_version": 1,
    }
    body.update(extra)
    return body


def hist_of(*rows: tuple[dict[str, object], int]) -> fleet.Histogram:
    h = fleet.Histogram()
    for body, n in rows:
        h.add(fleet.key_of(body, listed_at=NOW), n)
    return h


def rel(text: str):  # type: ignore[no-untyped-def]
    row = catalog().release(text)
    assert row is not None
    return row


def test_key_of_tolerates_absent_keys_and_marks_stale() -> None:
    key = fleet.key_of({"platform_id": BORON}, listed_at=NOW)
    assert key.release is None and key.stale and key.groups == () and key.updates_enabled
    old = fleet.key_of(raw("4.0.2", last_heard="2026-09-01T00:00:00Z"), listed_at=NOW)
    assert old.stale
    fresh = fleet.key_of(raw("4.0.2", groups=["b", "a"], quarantined=True), listed_at=NOW)
    assert not fresh.stale and fresh.groups == ("a", "b") and fresh.quarantined


def test_aggregation_collapses_identical_devices() -> None:
    devices = [raw("4.0.2", id=str(i)) for i in range(5000)] + [raw("2.3.1", id=f"o{i}") for i in range(7)]
    h = fleet.aggregate(devices, listed_at=NOW)
    assert len(h.buckets) == 2 and h.total == 5007
    assert h.versions() == [("2.3.1", 7), ("4.0.2", 5000)]


def test_histogram_json_round_trip() -> None:
    h = hist_of((raw("4.0.2", groups=["beta"], desired_firmware_version=3), 3), (raw(None), 2))
    again = fleet.Histogram.from_json(h.to_json())
    assert again.buckets == h.buckets
    with pytest.raises(ValueError):
        fleet.Histogram.from_json({"schema": 999, "buckets": []})


def test_floor_is_the_oldest_known_release_and_ignores_unknown() -> None:
    h = hist_of((raw("4.0.2"), 10), (raw("2.3.1"), 1), (raw(None), 4), (raw("9.9.9"), 1))
    assert str(fleet.floor(h, BORON).version) == "2.3.1"
    assert fleet.floor(fleet.Histogram(), BORON) is None


def test_evaluate_counts_each_consequence_with_the_policy_table() -> None:
    h = hist_of(
        (raw("6.3.4"), 10),
        (raw("4.0.2"), 100),
        (raw("2.3.1", cellular=False), 20),
        (raw("4.0.2", firmware_updates_enabled=False), 5),
        (raw(None), 3),
        (raw("2.3.1", platform_id=ELECTRON), 2),
    )
    impact = fleet.evaluate(h, "6.3.4", BORON)
    assert impact.total == 140
    assert impact.runs == 10
    assert impact.count(fleet.DEFERRED) == 5 and impact.stuck_rules() == {}
    (deferred,) = impact.by_consequence(fleet.DEFERRED)
    assert deferred.rule == "updates_disabled" and deferred.eventual == fleet.HEALER  # healed once they enable updates
    assert deferred.os_bytes_each == 0 and deferred.app_bytes_each == 0  # they refuse the OTA: nothing is sent
    assert impact.count(fleet.UNKNOWN) == 3 and impact.count(fleet.OTHER_PLATFORM) == 2
    # healer or combined for the 120 others: the same decision the policy table makes for one device
    one = delivery.plan_flash(policy.DeviceFacts(BORON, "4.0.2", in_product=True, cellular=True), "6.3.4")
    cohort = next(c for c in impact.cohorts if c.release == "4.0.2" and c.consequence != fleet.DEFERRED)
    assert cohort.rule == one.decision.rule and cohort.os_bytes_each == one.total_bytes - one.app_bytes
    assert cohort.reboots_each == one.reboots and cohort.count == 100
    wifi = next(c for c in impact.cohorts if c.release == "2.3.1" and c.platform_id == BORON)
    assert wifi.cellular == 0 and impact.os_bytes_wifi == wifi.os_bytes
    assert impact.os_bytes == impact.os_bytes_cellular + impact.os_bytes_wifi
    assert impact.worst == fleet.OTHER_PLATFORM and impact.blocks_ci


def test_gen2_products_past_the_cap_are_stuck() -> None:
    h = hist_of((raw("2.3.1", platform_id=ELECTRON), 7))
    impact = fleet.evaluate(h, "4.0.2", ELECTRON)
    assert impact.count(fleet.STUCK) == 7 and "gen2_cap" in impact.stuck_rules()


def test_allow_healed_policy_changes_ci_but_not_stuck() -> None:
    h = hist_of((raw("2.3.1"), 4), (raw("4.0.2"), 4))
    healed = fleet.evaluate(h, "4.0.2", BORON)
    assert healed.count(fleet.HEALER, fleet.COMBINED_OTA) == 4
    if healed.count(fleet.HEALER):
        assert healed.blocks_ci and not fleet.with_allow_healed(healed, True).blocks_ci
    deferred = fleet.evaluate(hist_of((raw("2.3.1", firmware_updates_enabled=False), 1)), "4.0.2", BORON)
    assert deferred.count(fleet.DEFERRED) == 1 and deferred.blocks_ci  # a Safe Mode boot waiting for updates
    assert not fleet.with_allow_healed(deferred, True).blocks_ci  # ... that the healer then fixes
    capped = hist_of((raw("2.3.1", platform_id=ELECTRON, firmware_updates_enabled=False), 1))
    stuck = fleet.evaluate(capped, "4.0.2", ELECTRON)
    (later,) = stuck.by_consequence(fleet.DEFERRED)
    assert later.eventual == fleet.STUCK and fleet.with_allow_healed(stuck, True).blocks_ci


def test_evaluation_works_on_buckets_not_devices() -> None:
    h = fleet.Histogram()
    for i in range(100_000):
        h.add(fleet.DeviceKey(BORON, ("2.3.1", "4.0.2", "5.6.0", "6.3.4")[i % 4], cellular=i % 3 == 0))
    assert len(h.buckets) == 8
    impact = fleet.evaluate(h, "6.3.4", BORON)
    assert impact.total == 100_000 and impact.runs == 25_000


def test_pin_options_offer_floor_and_intermediate() -> None:
    h = hist_of((raw("2.3.1"), 54), (raw("4.0.2"), 1150), (raw("6.3.4"), 10))
    options = fleet.pin_options(h, rel("6.3.4"), BORON)
    assert options[0].role == "floor" and options[0].title == "Retarget to 2.3.1 (runs on all 1,214 devices)"
    inter = [o for o in options if o.role == "intermediate"]
    assert [str(o.release.version) for o in inter] == ["4.0.2"]
    assert inter[0].title.startswith("Retarget to 4.0.2: runs as is on 1,160; 54 update over the air, ~")
    # the code's own floor rules out pins below it
    assert all(o.role != "floor" for o in fleet.pin_options(h, rel("6.3.4"), BORON, code_floor=rel("4.0.0")))


def test_reach_follows_the_documented_precedence() -> None:
    h = hist_of(
        (raw("4.0.2"), 10),
        (raw("4.0.2", development=True), 2),
        (raw("4.0.2", desired_firmware_version=1), 3),
        (raw("4.0.2", groups=["beta"]), 5),
        (raw("4.0.2", quarantined=True), 1),
    )
    none = ProductReleases()
    assert fleet.reached(h, none, 2, product_default=True, groups=()).total == 15
    assert fleet.reached(h, none, 2, product_default=False, groups=["beta"]).total == 5
    with_beta = ProductReleases(None, {"beta": 5})
    assert fleet.reached(h, with_beta, 2, product_default=True, groups=()).total == 10  # beta keeps v5
    assert fleet.target_devices(h, none, ("beta",)).total == 5
    assert fleet.next_version(h, with_beta) == 6


def test_findings_severity_follows_the_worst_consequence() -> None:
    ctx = fleetfindings.FleetContext("trackers", pin_span=Span(".vscode/settings.json", 2, 31))
    healthy = hist_of((raw("4.0.2"), 10))
    (ok,) = fleetfindings.impact_findings(healthy, rel("4.0.2"), BORON, ctx)
    assert ok.code == "FS502" and ok.severity == Severity.HINT and "all 10 devices" in ok.message
    mixed = hist_of((raw("2.3.1"), 5), (raw("4.0.2"), 10))
    (bad,) = fleetfindings.impact_findings(mixed, rel("6.3.4"), BORON, ctx)
    assert bad.code == "FS501" and bad.span == ctx.pin_span
    assert bad.severity == Severity.ERROR and bad.facts["blocks_ci"]
    assert bad.fixes[0].params["release"] == "2.3.1" and bad.fixes[0].kind == "retarget"
    assert any("on 2.3.1" in r.message for r in bad.related)
    (allowed,) = fleetfindings.impact_findings(mixed, rel("6.3.4"), BORON, ctx, allow_healed=True)
    assert allowed.severity == Severity.WARNING and not allowed.facts["blocks_ci"]


def test_uncertain_and_mixed_platform_findings() -> None:
    ctx = fleetfindings.FleetContext("trackers")
    h = hist_of((raw("4.0.2", last_heard="2026-01-01T00:00:00Z"), 3), (raw("4.0.2", platform_id=ELECTRON), 2))
    codes = {f.code: f for f in fleetfindings.impact_findings(h, rel("4.0.2"), BORON, ctx)}
    assert codes["FS503"].facts["uncertain"] == 3
    assert codes["FS504"].severity == Severity.ERROR and "Electron" in codes["FS504"].message
    assert codes["FS501"].facts["other_platform"] == 2


def test_no_devices_finding() -> None:
    ctx = fleetfindings.FleetContext("trackers", groups=("nope",))
    (f,) = fleetfindings.impact_findings(fleet.Histogram(), rel("4.0.2"), BORON, ctx)
    assert f.code == "FS508"


def test_target_window_names_the_api_and_both_fixes() -> None:
    h = hist_of((raw("2.3.1"), 54), (raw("4.0.2"), 1150))
    ctx = fleetfindings.FleetContext("trackers")
    code = fleetfindings.CodeFloor(rel("4.0.0"), "BLE.setScanPhy", Span("src/app.cpp", 12, 5))
    f = fleetfindings.target_window(h, code, BORON, ctx)
    assert f is not None and f.code == "FS505"
    assert "BLE.setScanPhy" in f.message and "2.3.1" in f.message
    assert [x.kind for x in f.fixes] == ["guard", "retarget"] and f.facts["moved"] == 54
    inside = fleetfindings.CodeFloor(rel("2.0.0"), "Particle.publish")
    assert fleetfindings.target_window(h, inside, BORON, ctx) is None


def test_histogram_rows_mark_pin_and_floor() -> None:
    h = hist_of((raw("2.3.1"), 1), (raw("4.0.2"), 3))
    impact = fleet.evaluate(h, "4.0.2", BORON)
    rows = fleet.histogram_rows(h, BORON, impact)
    assert [(r.release, r.is_floor, r.is_pin) for r in rows] == [("2.3.1", True, False), ("4.0.2", False, True)]
    assert rows[1].worst == fleet.RUNS and rows[0].worst != fleet.RUNS
    assert fleet.text_bar(1.0, 10) == "█" * 10 and fleet.text_bar(0.0, 10) == ""


def test_human_bytes() -> None:
    assert fleet.human_bytes(373_462) == "373 KB"
    assert fleet.human_bytes(18_400_000) == "18.4 MB"
    assert fleet.human_bytes(999) == "999 bytes"
