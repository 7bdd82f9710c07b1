"""One entry point from the command line's file names to a ResourceModel.

    resources.xml (or auto-detection) --\
                                         +--> merge --> ResourceModel
    project.xml (optional) -------------/

As in COMPSs, the project selects: only ComputeNodes it names take part, and each one
gets the project's deployment settings (User, InstallDir, WorkingDir, LimitOfTasks,
Application/*) laid over the hardware description from resources.xml.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

from .local import local_machine_model
from .model import ComputeNode, ResourceFileError, ResourceModel

if TYPE_CHECKING:   # lxml is imported only when a file is actually read (start-up time)
    from .xml_files import ProjectFile, ProjectNode


def load_resources(
    resources_path: str | os.PathLike | None = None,
    project_path: str | os.PathLike | None = None,
) -> ResourceModel:
    """Read, validate and merge the files; every failure is a ResourceFileError with file:line."""
    if resources_path is None:
        base = local_machine_model()
    else:
        from .xml_files import parse_resources_file
        base = parse_resources_file(resources_path)
    if project_path is None:
        return base
    from .xml_files import parse_project_file
    return apply_project(base, parse_project_file(project_path))


def apply_project(base: ResourceModel, project: ProjectFile) -> ResourceModel:
    """Keep only the nodes the project names, in project order, with its settings merged."""
    if not project.nodes:
        raise ResourceFileError(
            project.path, project.line, "Project", "declares no ComputeNode; the run would have no workers"
        )
    declared = {node.name: node for node in base.nodes}
    nodes = tuple(
        _merge(_declared_node(declared, entry, base, project), entry) for entry in project.nodes
    )
    _check_master_disks(base, project)
    return dataclasses.replace(
        base, nodes=nodes, master_shared_disks=project.master_shared_disks, project_path=project.path
    )


def _declared_node(
    declared: dict, entry: ProjectNode, base: ResourceModel, project: ProjectFile
) -> ComputeNode:
    node = declared.get(entry.name)
    if node is not None:
        return node
    origin = base.resources_path or "the auto-detected local machine"
    known = ", ".join(repr(name) for name in declared) or "none"
    raise ResourceFileError(
        project.path,
        entry.line,
        "ComputeNode",
        f"{entry.name!r} is not declared in {origin} (declared: {known})",
    )


def _merge(node: ComputeNode, entry: ProjectNode) -> ComputeNode:
    """Project values win; hardware-file values survive where the project is silent."""
    overrides = {
        field: getattr(entry, field)
        for field in (
            "user", "install_dir", "working_dir", "app_dir", "pythonpath",
            "library_path", "environment_script", "limit_of_tasks",
        )
        if getattr(entry, field) is not None
    }
    if entry.min_port is not None:
        overrides.update(min_port=entry.min_port, max_port=entry.max_port)
    return dataclasses.replace(node, **overrides)


def _check_master_disks(base: ResourceModel, project: ProjectFile) -> None:
    """A master mount of an undeclared disk is a typo that would silently disable sharing."""
    if base.resources_path is None:
        return  # nothing to check against without a resources file
    for name, _mount in project.master_shared_disks:
        if name not in base.shared_disks:
            raise ResourceFileError(
                project.path,
                project.master_line,
                "MasterNode",
                f"attaches SharedDisk {name!r}, which {base.resources_path} does not declare",
            )
