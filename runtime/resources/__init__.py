"""Resources layer: which machines a run may use, read from COMPSs resources/project files
or detected on the local machine. Imports only the standard library and (lazily) lxml."""

from .loader import apply_project, load_resources
from .local import LocalMachine, detect_local_machine, is_local_host, local_machine_model
from .model import ComputeNode, Processor, ResourceFileError, ResourceModel


def __getattr__(name: str):
    # The XML readers pull in lxml; load them only when asked (a run without files never is).
    if name in ("parse_project_file", "parse_resources_file"):
        from . import xml_files
        return getattr(xml_files, name)
    raise AttributeError(name)


__all__ = [
    "ComputeNode",
    "LocalMachine",
    "Processor",
    "ResourceFileError",
    "ResourceModel",
    "apply_project",
    "detect_local_machine",
    "is_local_host",
    "load_resources",
    "local_machine_model",
    "parse_project_file",
    "parse_resources_file",
]
