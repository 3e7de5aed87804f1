"""The guarded-flash decision (``fieldsafe.guard``): refuse what the device would not run, price the rest."""

from __future__ import annotations

from fieldsafe import compat, delivery, guard, policy
from fieldsafe.modules import parse_module
from flash_helpers import app_for, device


def _decide(binary: bytes, raw: dict, **kw: object) -> guard.FlashDecision:
    return guard.decide_flash(parse_module(binary), len(binary), raw, **kw)  # type: ignore[arg-type]


def codes(decision: guard.FlashDecision) -> list[str]:
    return [f.code for f in decision.findings]


def test_same_release_is_sent_as_is() -> None:
    d = _decide(app_for("boron", "4.0.2"), device("boron", "4.0.2"))
    assert d.verdict == guard.Verdict.SEND and d.allowed
    assert d.plan is None and d.predicted_bytes == d.app_bytes
    assert "runs this app as it is" in d.summary()


def test_older_target_runs_and_says_so() -> None:
    d = _decide(app_for("boron", "2.3.0"), device("boron", "4.0.2"))
    assert d.verdict == guard.Verdict.SEND
    assert compat.TARGET_OLDER_THAN_DEVICE in codes(d)


def test_needs_update_is_refused_without_the_flag_and_priced() -> None:
    raw = device("boron", "2.3.0", product=31337)
    binary = app_for("boron", "4.2.0")
    d = _decide(binary, raw)
    expected = delivery.plan_flash(guard.device_facts(raw), "4.2.0", app_bytes=len(binary))
    assert expected.decision.path == policy.UpgradePath.HEALER  # a product Boron: the table says healed
    assert d.verdict == guard.Verdict.REFUSE
    assert guard.NEEDS_DEVICE_OS_UPDATE in codes(d)
    assert d.plan == expected and d.predicted_bytes == expected.total_bytes
    finding = next(f for f in d.findings if f.code == guard.NEEDS_DEVICE_OS_UPDATE)
    assert "--allow-device-os-update" in finding.message and guard.kb(expected.total_bytes) in finding.message
    update = next(x for x in finding.fixes if x.kind == "update-os")
    assert update.params["command"] == ["update-os", "unit", "--to", "4.2.0"]
    assert d.mark_development  # a product device that is not a development device
    allowed = _decide(binary, raw, allow_device_os_update=True)
    assert allowed.verdict == guard.Verdict.SEND_WITH_UPDATE
    assert guard.DEVICE_OS_UPDATE_ALLOWED in codes(allowed)
    assert allowed.to_json()["plan"]["totalBytes"] == expected.total_bytes


def test_stuck_is_refused_even_with_the_flag() -> None:
    # A developer Electron: the policy table says nothing heals it (developer_electron)
    raw = device("electron", "0.5.3")
    binary = app_for("electron", "2.3.1")
    expected = delivery.plan_flash(guard.device_facts(raw), "2.3.1", app_bytes=len(binary))
    assert expected.decision.path == policy.UpgradePath.STUCK
    d = _decide(binary, raw, allow_device_os_update=True)
    assert d.verdict == guard.Verdict.REFUSE and guard.WOULD_BE_STUCK in codes(d)
    stuck = next(f for f in d.findings if f.code == guard.WOULD_BE_STUCK)
    assert "Refused even with --allow-device-os-update" in stuck.message
    assert any(x.kind == "retarget" and x.params["release"] == "0.5.3" for x in stuck.fixes)


def test_updates_disabled_is_refused_with_how_to_enable_them() -> None:
    # The policy's DEFERRED row: the device refuses every OTA, a compatible app too, so nothing is sent
    for binary in (app_for("boron", "4.2.0"), app_for("boron", "2.3.0")):
        raw = device("boron", "2.3.0", product=31337, updates_enabled=False)
        d = _decide(binary, raw, allow_device_os_update=True)
        assert d.verdict == guard.Verdict.REFUSE and not d.allowed
        finding = next(f for f in d.findings if f.code == guard.UPDATES_DISABLED)
        assert "refuses over-the-air updates" in finding.message and "firmware_updates_forced" in finding.message
    forced = device("boron", "2.3.0", product=31337, updates_enabled=False)
    forced["firmware_updates_forced"] = True
    assert _decide(app_for("boron", "2.3.0"), forced).verdict == guard.Verdict.SEND


def test_developer_electron_decision_follows_the_policy_table() -> None:
    raw = device("electron", "0.5.3", name="field-unit-7")
    binary = app_for("electron", "2.3.1")
    expected = delivery.plan_flash(guard.device_facts(raw), "2.3.1", app_bytes=len(binary))
    plain = _decide(binary, raw)
    assert plain.verdict == guard.Verdict.REFUSE and plain.plan == expected
    allowed = _decide(binary, raw, allow_device_os_update=True)
    assert expected.decision.rule == "developer_electron" and not allowed.allowed
    finding = next(f for f in allowed.findings if f.code == guard.WOULD_BE_STUCK)
    update = next(x for x in finding.fixes if x.kind == "update-os")
    assert update.params["bytes"] == delivery.plan_update_os(guard.device_facts(raw), "2.3.1").total_bytes > 0


def test_offline_device_is_refused() -> None:
    d = _decide(app_for("argon", "6.1.1"), device("argon", "6.1.1", online=False))
    assert d.verdict == guard.Verdict.REFUSE and guard.DEVICE_OFFLINE in codes(d)


def test_platform_mismatch_is_refused() -> None:
    d = _decide(app_for("argon", "6.1.1"), device("boron", "6.1.1"))
    assert d.verdict == guard.Verdict.REFUSE and compat.PLATFORM_MISMATCH in codes(d)


def test_unknown_device_release_is_refused() -> None:
    d = _decide(app_for("boron", "4.0.2"), device("boron", "9.9.9"))
    assert d.verdict == guard.Verdict.REFUSE and guard.DEVICE_UNREADABLE in codes(d)


def test_unreadable_device_refusal_names_the_fixes() -> None:
    d = guard.refuse_unreadable("ghost", "device 'ghost' not found")
    assert not d.allowed and "fieldsafe devices" in d.findings[0].message and d.findings[0].code == "FS601"


def test_json_shape_for_the_editor() -> None:
    body = _decide(app_for("electron", "2.3.1"), device("electron", "0.5.3", name="field-unit-7")).to_json()
    assert body["verdict"] == "refuse" and body["allowed"] is False
    assert body["retarget"]["release"] == "0.5.3"
    assert body["device"]["name"] == "field-unit-7" and body["neededRelease"] == "2.3.1"
    assert len(body["appHash"] or "") in (0, 64)


def test_wording_helpers() -> None:
    assert guard.kb(1_234_567) == "1,235 KB"
    assert guard.duration(30) == "~30 s" and guard.duration(600) == "~10 min" and guard.duration(7200) == "~2.0 h"
