"""Per-project state of the language server and the registry that maps URIs to projects.

Why per project, not per workspace folder: a folder may hold several Particle projects (each with its
own ``project.properties`` and ``.vscode/settings.json`` pin), and a multi-root workspace has several
folders. Each project gets its own pin, device, compile scheduler, status and diagnostics layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pygls.uris import from_fs_path, to_fs_path

from fieldsafe.lsp.config import ServerOptions

if TYPE_CHECKING:
    from fieldsafe.compilejob import CompileOutcome
    from fieldsafe.lsp.scheduler import GenerationScheduler

SETTINGS_REL = ".vscode/settings.json"
PIN_KEY = "particle.firmwareVersion"
PLATFORM_KEY = "particle.targetPlatform"
DEVICE_KEY = "particle.targetDevice"
WATCHED_NAMES = ("project.properties", "particle.include", "particle.ignore", "settings.json")


def uri_of(path: Path) -> str:
    """``file:`` URI of a path (pygls' encoding, so it compares equal to what editors send)."""
    return from_fs_path(str(path)) or path.as_uri()


def path_of(uri: str) -> Path | None:
    """Filesystem path of a ``file:`` URI; None for ``untitled:`` and other schemes."""
    fs = to_fs_path(uri)
    return Path(fs) if fs else None


@dataclass
class TargetView:
    """What the last pin check saw: the pin, platform, device and its state (for status and hover)."""

    pin: str | None = None
    platform: str | None = None
    platform_id: int | None = None
    device_name: str | None = None
    device: dict[str, Any] | None = None
    device_age: float | None = None
    device_error: str | None = None
    settings_error: str | None = None
    findings_worst: int | None = None
    problem: str | None = None  # the message of the most severe pin finding, for the status
    fleet: Any = None  # fieldsafe.fleetcheck.CheckedFleet of fieldsafe.targetProduct (listing, floor, impact)
    fleet_error: str | None = None  # why the fleet target could not be checked


@dataclass
class ProjectState:
    """Everything the server tracks for one Particle project."""

    root: Path
    folder_uri: str | None
    options: ServerOptions = field(default_factory=ServerOptions)
    scheduler: GenerationScheduler | None = None
    last_outcome: CompileOutcome | None = None
    compile_cache: dict[str, CompileOutcome] = field(default_factory=dict)
    target: TargetView = field(default_factory=TargetView)
    state: str = "idle"
    message: str | None = None
    check_generation: int = 0
    disk_texts: dict[str, tuple[int, str]] = field(default_factory=dict)  # rel -> (mtime_ns, text), for the lint

    @property
    def uri(self) -> str:
        return uri_of(self.root)

    @property
    def settings_path(self) -> Path:
        return self.root / SETTINGS_REL

    @property
    def settings_uri(self) -> str:
        return uri_of(self.settings_path)

    def layer(self, name: str) -> str:
        """Diagnostics layer key of this project (``<root uri>#compile`` etc.)."""
        return f"{self.uri}#{name}"

    def rel(self, uri: str) -> str | None:
        """Project-relative POSIX path of ``uri``, or None when it is outside the project."""
        path = path_of(uri)
        if path is None:
            return None
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return None

    def file_uri(self, rel: str) -> str:
        """URI of a project-relative path (how never-opened files get their diagnostics)."""
        return uri_of(self.root / rel)


class ProjectRegistry:
    """Known projects, found in workspace folders or on the fly from opened files."""

    def __init__(self) -> None:
        self.projects: dict[Path, ProjectState] = {}

    def add(self, root: Path, folder_uri: str | None) -> tuple[ProjectState, bool]:
        """The state for ``root``, created when new; the flag says whether it was created."""
        key = root.resolve()
        existing = self.projects.get(key)
        if existing is not None:
            return existing, False
        state = ProjectState(root=key, folder_uri=folder_uri)
        self.projects[key] = state
        return state, True

    def remove_under(self, folder: Path) -> list[ProjectState]:
        """Forget the projects inside a removed workspace folder; returns them (to clear diagnostics)."""
        folder = folder.resolve()
        gone = [p for k, p in self.projects.items() if k == folder or folder in k.parents]
        for p in gone:
            del self.projects[p.root]
        return gone

    def for_path(self, path: Path) -> ProjectState | None:
        """The innermost known project containing ``path``."""
        path = path.resolve()
        best: ProjectState | None = None
        for root, state in self.projects.items():
            if (path == root or root in path.parents) and (best is None or len(root.parts) > len(best.root.parts)):
                best = state
        return best

    def for_uri(self, uri: str) -> ProjectState | None:
        path = path_of(uri)
        return None if path is None else self.for_path(path)

    def by_uri(self, project_uri: str) -> ProjectState | None:
        """The project whose root URI (or any path inside it) is ``project_uri``."""
        return self.for_uri(project_uri)

    def all(self) -> list[ProjectState]:
        return sorted(self.projects.values(), key=lambda p: str(p.root))
