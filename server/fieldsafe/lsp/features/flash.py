"""Guarded flash and planned Device OS update as ``workspace/executeCommand`` (any LSP editor).

The decisions and steps are the engine's (``fieldsafe.flashjob``, ``fieldsafe.osupdate``); this module only
turns arguments into calls, runs them off the event loop with ``$/progress`` (cancellable), and asks for
confirmation when told to. See docs/lsp.md "Guarded flash and Device OS update".

``confirm`` argument of both commands: absent/false = decide only (the device is read fresh, nothing is
sent); true = execute when the guard allows it (the client already asked the user, as VS Code's modal does);
"ask" = the server asks with ``window/showMessageRequest`` (how Neovim/Emacs users and the FS101 quick-fix
confirm), then executes.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams

from fieldsafe._lazy import lazy_module
from fieldsafe.findings import Severity
from fieldsafe.lsp.features import CommandHandler, FeatureHost, LanguageFeature, object_arg

# the flash/update engines (cloud, delivery plans) load when a command first runs, not at server start-up
flashjob = lazy_module("fieldsafe.flashjob")
osupdate = lazy_module("fieldsafe.osupdate")
cloudmod = lazy_module("fieldsafe.cloud")
compilejob = lazy_module("fieldsafe.compilejob")

FLASH = "fieldsafe.server.flash"
UPDATE_OS = "fieldsafe.server.updateOs"
_DEVICE = re.compile(r"[\w.\-]{1,64}")
_RELEASE = re.compile(r"[0-9][0-9A-Za-z.+\-]{0,39}")


def setup(host: FeatureHost) -> LanguageFeature:
    """Feature entry point (found by ``fieldsafe.lsp.features.load_features``)."""
    return FlashFeature(host)


def _text(arg: dict[str, Any], name: str, pattern: re.Pattern[str], what: str) -> str | None:
    value = arg.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value.strip()):
        raise JsonRpcInvalidParams(f"{name}: expected {what}, got {value!r}")
    return value.strip()


def _confirm(arg: dict[str, Any]) -> bool | str:
    value = arg.get("confirm", False)
    if value not in (True, False, "ask", None):
        raise JsonRpcInvalidParams(f'confirm: expected true, false or "ask", got {value!r}')
    return value or False


class FlashFeature(LanguageFeature):
    """``fieldsafe.server.flash`` and ``fieldsafe.server.updateOs``."""

    name = "flash"

    def __init__(self, host: FeatureHost) -> None:
        super().__init__(host)
        self.running: dict[str, asyncio.Task[Any]] = {}  # device -> the run in flight (one per device)

    def commands(self) -> dict[str, CommandHandler]:
        return {FLASH: self.flash, UPDATE_OS: self.update_os}

    async def shutdown(self) -> None:
        for task in list(self.running.values()):
            task.cancel()

    # ---- shared ------------------------------------------------------------------------------------

    def _target(self, arg: dict[str, Any]) -> tuple[Any, str]:
        project = self.host.resolve_project(arg, required=False)
        if project is None and len(self.host.registry.all()) == 1:
            project = self.host.registry.all()[0]
        device = _text(arg, "device", _DEVICE, "a device name or id")
        if device is None and project is not None:
            device = project.target.device_name or _pinned_device(project.root)
        if device is None:
            raise JsonRpcInvalidParams(
                "device: no device given and the project has no particle.targetDevice (set it or pass {device})"
            )
        return project, device

    async def _run(self, device: str, work: Any, progress: Any) -> Any:
        """Run ``work`` in a thread under ``progress``; a cancelled request stops it cooperatively."""
        if device in self.running and not self.running[device].done():
            raise JsonRpcInvalidParams(f"a flash or update of {device} is already running")
        task = asyncio.ensure_future(asyncio.to_thread(work))
        self.running[device] = task
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            progress.cancel()  # the thread sees should_stop() and ends at the next check
            raise
        finally:
            if self.running.get(device) is task:
                self.running.pop(device, None)

    async def _ask(self, question: str, yes: str) -> bool:
        answer = await self.host.ask(question, [yes, "Cancel"])
        return answer == yes

    def _cloud(self, project: Any) -> Any:
        try:
            return self.host.cloud_for(project)
        except cloudmod.CloudError as exc:
            raise JsonRpcInternalError(str(exc)) from None

    async def _after(self, project: Any) -> None:
        """The device changed: forget cached answers and re-check the pin against its new state."""
        self.host.devices.invalidate()
        if project is not None:
            self.host.spawn(self.host.refresh_pin(project))

    # ---- fieldsafe.server.flash ---------------------------------------------------------------------

    async def flash(self, *args: Any) -> dict[str, Any]:
        """fieldsafe.server.flash {projectUri?, device?, binaryPath?, product?, allowDeviceOsUpdate?, confirm?}."""
        arg = object_arg(args)
        project, device = self._target(arg)
        confirm = _confirm(arg)
        allow = bool(arg.get("allowDeviceOsUpdate", False))
        product = arg.get("product")
        if product is not None and not isinstance(product, str | int):
            raise JsonRpcInvalidParams(f"product: expected a product id or slug, got {product!r}")
        cloud = self._cloud(project)
        binary, name, build = await self._binary(arg, project, cloud)
        if binary is None:
            return build
        checked = await asyncio.to_thread(
            flashjob.guarded_flash, cloud, device, binary, allow_device_os_update=allow, execute=False, product=product
        )
        body = checked.to_json()
        body["binaryName"] = name
        body["build"] = build
        if not checked.decision.allowed or not confirm:
            return body
        if confirm == "ask" and not await self._ask(f"fieldsafe: {checked.decision.summary()} Flash now?", "Flash"):
            body["outcome"] = "declined"
            return body
        progress = self.host.progress(f"fieldsafe: flashing {device}")
        async with progress:

            def work() -> flashjob.FlashResult:
                return flashjob.guarded_flash(
                    cloud,
                    device,
                    binary,
                    allow_device_os_update=allow,
                    progress=lambda m, f: progress.report(m, None if f is None else round(f * 100)),
                    should_stop=progress.should_stop,
                    filename=name,
                    product=product,
                )

            result = await self._run(device, work, progress)
            progress.ending = result.outcome
        await self._after(project)
        out = result.to_json()
        out["binaryName"], out["build"] = name, build
        if not result.ok:
            self.host.show_message(
                f"fieldsafe: flash of {device} {result.outcome}: {_first_error(result.findings)}", level="error"
            )
        return out

    async def _binary(self, arg: dict[str, Any], project: Any, cloud: Any) -> tuple[bytes | None, str, dict[str, Any]]:
        """The app to flash: ``binaryPath``, else the project compiled for its pin (cached result when unchanged)."""
        raw = arg.get("binaryPath")
        if raw is not None:
            if not isinstance(raw, str) or not raw:
                raise JsonRpcInvalidParams(f"binaryPath: expected a file path, got {raw!r}")
            path = Path(raw[7:] if raw.startswith("file://") else raw)
            if not path.is_file():
                raise JsonRpcInvalidParams(f"binaryPath: no such file: {path}")
            return path.read_bytes(), path.name, {"source": "file", "path": str(path)}
        if project is None:
            raise JsonRpcInvalidParams("binaryPath or projectUri is required")
        progress = self.host.progress(f"fieldsafe: compiling {project.root.name} to flash", cancellable=True)
        async with progress:
            try:
                outcome, target = await asyncio.to_thread(
                    flashjob.build_project,
                    project.root,
                    cloud,
                    should_stop=progress.should_stop,
                    cache=project.compile_cache,  # compile-on-save results for the same files and pin
                )
            except flashjob.BuildError as exc:
                raise JsonRpcInvalidParams(str(exc)) from None
            except compilejob.CompileCancelled:
                return None, "", {"outcome": "cancelled", "allowed": False, "findings": []}
            except cloudmod.CloudError as exc:
                self.host.report_failure(exc, "compiling to flash")
                raise JsonRpcInternalError(str(exc)) from None
        build = {
            "source": "compile",
            "release": str(target.release.version),
            "platform": target.platform.name,
            "ok": outcome.ok,
            "findings": [f.to_json() for f in outcome.findings],
        }
        if not outcome.ok or outcome.binary is None or outcome.module is None:
            return (
                None,
                "",
                {"outcome": "build_failed", "allowed": False, "build": build, "findings": build["findings"]},
            )
        return outcome.binary, f"{project.root.name}.bin", build

    # ---- fieldsafe.server.updateOs ------------------------------------------------------------------

    async def update_os(self, *args: Any) -> dict[str, Any]:
        """fieldsafe.server.updateOs {projectUri?, device?, release, confirm?}: plan, or run (resumable)."""
        arg = object_arg(args)
        project, device = self._target(arg)
        release = _text(arg, "release", _RELEASE, "a Device OS release such as '2.3.1'")
        if release is None:
            raise JsonRpcInvalidParams("release: the Device OS release to update to is required")
        confirm = _confirm(arg)
        product = arg.get("product")
        if product is not None and not isinstance(product, str | int):
            raise JsonRpcInvalidParams(f"product: expected a product id or slug, got {product!r}")
        cloud = self._cloud(project)
        planned = await asyncio.to_thread(osupdate.run_update, cloud, device, release, execute=False, product=product)
        body = planned.to_json()
        if planned.outcome != "planned" or not confirm:
            return body
        if confirm == "ask" and not await self._ask(f"fieldsafe: {planned.planned.summary()} Update now?", "Update"):
            body["outcome"] = "declined"
            return body
        progress = self.host.progress(f"fieldsafe: updating Device OS on {device}")
        async with progress:

            def work() -> osupdate.UpdateResult:
                return osupdate.run_update(
                    cloud,
                    device,
                    release,
                    progress=lambda m, f: progress.report(m, None if f is None else round(f * 100)),
                    should_stop=progress.should_stop,
                    product=product,
                )

            result = await self._run(device, work, progress)
            progress.ending = result.outcome
        await self._after(project)
        if not result.ok:
            self.host.show_message(
                f"fieldsafe: Device OS update of {device} {result.outcome}: {_first_error(result.findings)}",
                level="error",
            )
        return result.to_json()


def _pinned_device(root: Path) -> str | None:
    """``particle.targetDevice`` from disk (before the first pin check has filled the project's view)."""
    from fieldsafe.project import ProjectSettingsError, read_settings

    try:
        return read_settings(root).target_device
    except ProjectSettingsError:
        return None


def _first_error(findings: list[Any]) -> str:
    for finding in findings:
        if finding.severity == Severity.ERROR:
            return finding.message
    return "see the output for details"
