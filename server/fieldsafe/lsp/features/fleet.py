"""The fleet target in the editor: product and group pickers, refresh, and the data of the fleet view.

Commands (one object argument each; see docs/lsp.md "Fleet target"):

* ``fieldsafe.server.listProducts {projectUri?}`` -> ``{products: [{id, slug, name, platform, platformId, groups}]}``
* ``fieldsafe.server.listGroups {projectUri?, product?}`` -> ``{product, groups: [{name, devices}]}``
* ``fieldsafe.server.setFleetTarget {projectUri, product, groups?}`` -> writes ``fieldsafe.targetProduct`` /
  ``fieldsafe.targetGroups`` and re-checks the pin (``product: null`` removes nothing: edit the file for that)
* ``fieldsafe.server.refreshFleet {projectUri}`` -> lists the product again (progress, cancellable), re-checks
* ``fieldsafe.server.fleetView {projectUri, release?}`` -> the histogram rows, floor, pin and impact the VS Code
  fleet view draws (computed by ``fieldsafe.fleet``; the view only paints)

The numbers and words are the engine's (``fleet``, ``fleetfindings``, ``fleetcheck``); this module translates.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams

from fieldsafe._lazy import lazy_module
from fieldsafe.lsp.features import CommandHandler, FeatureHost, LanguageFeature, object_arg

cloudmod = lazy_module("fieldsafe.cloud")  # loaded when a fleet command runs, not at server start-up

LIST_PRODUCTS = "fieldsafe.server.listProducts"
LIST_GROUPS = "fieldsafe.server.listGroups"
SET_FLEET_TARGET = "fieldsafe.server.setFleetTarget"
REFRESH_FLEET = "fieldsafe.server.refreshFleet"
FLEET_VIEW = "fieldsafe.server.fleetView"
_NAME = re.compile(r"[A-Za-z0-9][\w.\-]{0,99}")


def setup(host: FeatureHost) -> LanguageFeature:
    return FleetFeature(host)


def _name(value: Any, what: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _NAME.fullmatch(value.strip()):
        raise JsonRpcInvalidParams(f"{what}: expected a product id or slug / group name, got {value!r}")
    return value.strip()


class FleetFeature(LanguageFeature):
    name = "fleet"

    def commands(self) -> dict[str, CommandHandler]:
        return {
            LIST_PRODUCTS: self.list_products,
            LIST_GROUPS: self.list_groups,
            SET_FLEET_TARGET: self.set_fleet_target,
            REFRESH_FLEET: self.refresh_fleet,
            FLEET_VIEW: self.fleet_view,
        }

    async def shutdown(self) -> None:
        fleets = getattr(self.host, "fleets", None)
        if fleets is not None:
            fleets.shutdown()

    def _project(self, arg: dict[str, Any], required: bool = True) -> Any:
        project = self.host.resolve_project(arg, required=False)
        if project is None and len(self.host.registry.all()) == 1:
            project = self.host.registry.all()[0]
        if project is None and required:
            raise JsonRpcInvalidParams("projectUri: no such Particle project open")
        return project

    def _client(self, project: Any) -> Any:
        try:
            return self.host.cloud_for(project)
        except cloudmod.CloudError as exc:
            raise JsonRpcInternalError(str(exc)) from None

    async def list_products(self, *args: Any) -> dict[str, Any]:
        from fieldsafe import platforms

        project = self._project(object_arg(args), required=False)
        client = self._client(project)
        try:
            rows = await asyncio.to_thread(client.products)
        except cloudmod.CloudError as exc:
            self.host.report_failure(exc, "listing products")
            raise JsonRpcInternalError(str(exc)) from None
        out = []
        for p in rows:
            plat = platforms.find(p.get("platform_id")) if isinstance(p.get("platform_id"), int) else None
            out.append(
                {
                    "id": p.get("id"),
                    "slug": p.get("slug"),
                    "name": p.get("name"),
                    "platformId": p.get("platform_id"),
                    "platform": plat.display_name if plat else None,
                    "groups": [g for g in p.get("groups") or () if isinstance(g, str)],
                }
            )
        return {"products": out}

    async def list_groups(self, *args: Any) -> dict[str, Any]:
        arg = object_arg(args)
        project = self._project(arg, required=False)
        product = arg.get("product")
        if product in (None, "") and project is not None and project.target.fleet is not None:
            product = project.target.fleet.ref.name
        if product in (None, ""):
            raise JsonRpcInvalidParams("listGroups needs {product} (or a project with fieldsafe.targetProduct)")
        product = _name(product, "product")
        client = self._client(project)
        try:
            info = await asyncio.to_thread(client.product, product)
        except cloudmod.CloudError as exc:
            raise JsonRpcInternalError(str(exc)) from None
        counts: dict[str, int] = {}
        fleets = getattr(self.host, "fleets", None)
        last = fleets.last(product) if fleets is not None else None
        if last is not None and last.listing is not None:
            counts = last.listing.histogram.groups()
        names = [g for g in info.get("groups") or () if isinstance(g, str)]
        names += [g for g in counts if g not in names]
        return {"product": product, "groups": [{"name": g, "devices": counts.get(g)} for g in sorted(names)]}

    async def set_fleet_target(self, *args: Any) -> dict[str, Any]:
        from fieldsafe.fleettarget import GROUPS_KEY, PRODUCT_KEY
        from fieldsafe.project import ProjectSettingsError, write_setting

        arg = object_arg(args)
        project = self._project(arg)
        product = _name(arg.get("product"), "product")
        groups_arg = arg.get("groups")
        if groups_arg is not None and not isinstance(groups_arg, list):
            raise JsonRpcInvalidParams(f"groups: expected an array of group names, got {groups_arg!r}")
        groups = [_name(g, "groups[]") for g in groups_arg or []]
        try:
            write_setting(project.root, PRODUCT_KEY, product)
            if groups_arg is not None:
                write_setting(project.root, GROUPS_KEY, groups)  # type: ignore[arg-type]  # written as a JSON array
        except ProjectSettingsError as exc:
            raise JsonRpcInvalidParams(str(exc)) from None
        await self.host.refresh_pin(project)
        return {"applied": True, "product": product, "groups": groups if groups_arg is not None else None}

    async def refresh_fleet(self, *args: Any) -> dict[str, Any]:
        from fieldsafe.lsp import fleets

        project = self._project(object_arg(args))
        settings_fleet = self._settings_fleet(project)
        if settings_fleet is None:
            raise JsonRpcInvalidParams("refreshFleet: the project has no fieldsafe.targetProduct")
        from fieldsafe import fleetcheck

        ref = fleetcheck.fleet_ref(settings_fleet)
        result = await fleets.lookup(self.host, project, ref, refresh=True)  # reports $/progress per page
        await self.host.refresh_pin(project)
        fleet_view = project.target.fleet
        return {
            "product": ref.name,
            "listed": result.listing.listed if result.listing is not None else None,
            "complete": result.listing.complete if result.listing is not None else None,
            "error": str(result.error) if result.error is not None else None,
            "status": fleet_view.describe() if fleet_view is not None else None,
        }

    def _settings_fleet(self, project: Any) -> Any:
        from fieldsafe.fleettarget import FleetTargetError, read

        try:
            return read(project.root)
        except FleetTargetError as exc:
            raise JsonRpcInvalidParams(str(exc)) from None

    async def fleet_view(self, *args: Any) -> dict[str, Any]:
        from fieldsafe import fleet, fleetfindings
        from fieldsafe.versions import catalog

        arg = object_arg(args)
        project = self._project(arg)
        view = project.target
        checked = view.fleet
        if checked is None:
            return {"product": None, "error": view.fleet_error or "no fieldsafe.targetProduct in this project"}
        release_text = arg.get("release") or view.pin
        release = catalog().release(release_text) if isinstance(release_text, str) else None
        impact = None
        if release is not None and checked.platform_id is not None and checked.targeted.total:
            impact = fleet.evaluate(
                checked.targeted, release, checked.platform_id, allow_healed=checked.ref.allow_healed
            )
        rows = fleet.histogram_rows(checked.targeted, checked.platform_id or -1, impact)
        listing = checked.listing
        return {
            "product": checked.ref.name,
            "groups": list(checked.ref.groups),
            "status": checked.describe(),
            "platformId": checked.platform_id,
            "devices": checked.targeted.total,
            "devicesInProduct": listing.histogram.total,
            "floor": checked.floor,
            "pin": str(release.version) if release is not None else None,
            "listing": {
                "complete": listing.complete,
                "missing": listing.missing_text() or None,
                "ageSeconds": listing.age_seconds,
                "source": listing.source,
            },
            "histogram": [r.to_json() for r in rows],
            "summary": fleetfindings.impact_sentence(impact) if impact is not None else None,
            "blocksCi": impact.blocks_ci if impact is not None else False,
            "labels": dict(fleet.CONSEQUENCE_LABELS),
        }
