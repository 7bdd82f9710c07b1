"""Typed records describing the machines a run may use.

These records are the only thing the rest of the runtime sees of resources.xml and
project.xml: the deployer reads host names, users and directories from them, the
scheduler reads computing units. They are frozen so that one model can be shared by
every component of a run without anyone mutating it behind the others' backs.
"""

from __future__ import annotations

from dataclasses import dataclass

CPU = "CPU"
GPU = "GPU"
FPGA = "FPGA"


@dataclass(frozen=True, slots=True)
class Processor:
    """One <Processor> of a node; a node may mix CPUs, GPUs and FPGAs."""

    name: str = "MainProcessor"
    computing_units: int = 1
    architecture: str | None = None
    type: str = CPU  # upper-cased COMPSs processor type: CPU, GPU, FPGA, OTHER...
    speed_ghz: float | None = None
    internal_memory_gb: float | None = None
    properties: tuple[tuple[str, str], ...] = ()  # ProcessorProperty (Key, Value) pairs


@dataclass(frozen=True, slots=True)
class ComputeNode:
    """A host that runs tasks: hardware from resources.xml, deployment from project.xml."""

    name: str  # host name, unique within a model (ComputeNode Name=)
    processors: tuple[Processor, ...]  # never empty
    memory_gb: float | None = None
    memory_type: str | None = None
    storage_gb: float | None = None
    storage_type: str | None = None
    os_type: str | None = None
    os_distribution: str | None = None
    os_version: str | None = None
    software: tuple[str, ...] = ()
    min_port: int | None = None  # invariant: min_port <= max_port when both are set
    max_port: int | None = None
    shared_disks: tuple[tuple[str, str], ...] = ()  # (disk name, mount point)
    # From project.xml; None when the project does not say.
    user: str | None = None
    install_dir: str | None = None
    working_dir: str | None = None
    app_dir: str | None = None
    pythonpath: str | None = None
    library_path: str | None = None
    environment_script: str | None = None
    limit_of_tasks: int | None = None
    source: str = ""  # "path:line" of the declaration, so later errors can point at it

    @property
    def computing_units(self) -> int:
        """CPU units only: executor slots are CPU slots, GPUs are a separate constraint."""
        return sum(p.computing_units for p in self.processors if p.type == CPU)

    @property
    def gpus(self) -> int:
        return sum(p.computing_units for p in self.processors if p.type == GPU)

    @property
    def fpgas(self) -> int:
        return sum(p.computing_units for p in self.processors if p.type == FPGA)

    @property
    def processor_speed_ghz(self) -> float | None:
        return self.processors[0].speed_ghz if self.processors else None

    @property
    def processor_architecture(self) -> str | None:
        """Constraints name one architecture per node, as COMPSs matches the first processor."""
        return self.processors[0].architecture if self.processors else None


@dataclass(frozen=True, slots=True)
class ResourceModel:
    """Every node a run may use, plus where the description came from."""

    nodes: tuple[ComputeNode, ...]  # invariant: node names are unique
    shared_disks: tuple[str, ...] = ()  # names of declared SharedDisks
    master_shared_disks: tuple[tuple[str, str], ...] = ()  # project MasterNode (name, mount)
    resources_path: str | None = None
    project_path: str | None = None

    @property
    def total_computing_units(self) -> int:
        return sum(node.computing_units for node in self.nodes)

    def node(self, name: str) -> ComputeNode:
        """Look a node up by its declared name; KeyError lists what exists."""
        for node in self.nodes:
            if node.name == name:
                return node
        known = ", ".join(n.name for n in self.nodes) or "none"
        raise KeyError(f"no ComputeNode named {name!r} (declared: {known})")


class ResourceFileError(ValueError):
    """A resources/project file the runtime cannot use, pointing at the offending spot.

    The message reads ``<path>:<line>: <Element>: <what is wrong>``; the line or the
    element part is left out when unknown (a missing file has neither).
    """

    def __init__(self, path: str, line: int | None, element: str | None, problem: str):
        self.path = path
        self.line = line
        self.element = element
        self.problem = problem
        super().__init__(_format_error(path, line, element, problem))

    def __reduce__(self):
        # Errors travel between processes (master -> CLI); keep them picklable.
        return (type(self), (self.path, self.line, self.element, self.problem))


def _format_error(path: str, line: int | None, element: str | None, problem: str) -> str:
    where = path if line is None else f"{path}:{line}"
    return f"{where}: {element}: {problem}" if element else f"{where}: {problem}"
