"""Resources layer: which machines a run may use, read from COMPSs resources/project files
or detected on the local machine. Imports only the standard library and lxml."""

from .loader import apply_project, load_resources
from .local import LocalMachine, detect_local_machine, is_local_host, local_machine_model
from .model import ComputeNode, Processor, ResourceFileError, ResourceModel
from .xml_files import parse_project_file, parse_resources_file

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
