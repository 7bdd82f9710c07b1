"""Reading resources.xml and project.xml into typed records.

Every file goes through three gates, each reporting ``path:line: Element: problem``:

    bytes --lxml parse--> tree --XSD (schema/*.xsd)--> valid tree --semantic checks--> records
          syntax errors        unknown / misplaced          ComputingUnits >= 1, unique
                               elements, bad numbers        names, MinPort <= MaxPort ...

The XSDs keep child order free (as COMPSs does), so "at most once" rules inside an
unbounded xs:choice are enforced here by ``_Document.child``.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import threading
from dataclasses import dataclass
from importlib import resources

from lxml import etree

from .model import ComputeNode, Processor, ResourceFileError, ResourceModel

_SCHEMA_FILES = ("common.xsd", "resources.xsd", "project.xsd")
XS_NAMESPACE = "http://www.w3.org/2001/XMLSchema"
_MAX_PORT = 65535
_VALIDATION_LOCK = threading.Lock()


# -- schemas ---------------------------------------------------------------------------


def _schema_bytes(name: str) -> bytes:
    return (resources.files(__package__) / "schema" / name).read_bytes()


class _PackagedSchemaResolver(etree.Resolver):
    """Serves xs:include targets from the package, so schemas work from a wheel or zip."""

    def resolve(self, url, public_id, context):
        name = (url or "").rsplit("/", 1)[-1]
        if name in _SCHEMA_FILES:
            return self.resolve_string(_schema_bytes(name), context, base_url=url)
        return None


@functools.cache
def _schema(name: str) -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(_PackagedSchemaResolver())
    tree = etree.fromstring(_schema_bytes(name), parser, base_url=f"superscalar:/schema/{name}")
    return etree.XMLSchema(tree)


# -- reading and validating a document -------------------------------------------------

_LXML_MESSAGE = re.compile(
    r"^Element '(?P<element>[^']+)'(?:, attribute '(?P<attribute>[^']+)')?: (?P<problem>.*)$",
    re.S,
)
_BAD_VALUE = re.compile(
    r"^'(?P<value>.*)' is not a valid value of the atomic type '(?P<type>[^']+)'\.$", re.S
)
_TYPE_WORDS = {
    "xs:int": "an integer",
    "xs:float": "a number",
    "SizeType": "a number >= 0",
    "NameType": "a non-empty name",
}


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


@functools.cache
def _vocabulary(schema: str) -> tuple[str, ...]:
    """Every element name a file of this kind may contain, for "did you mean" hints."""
    names = set()
    for name in ("common.xsd", schema):
        tree = etree.fromstring(_schema_bytes(name))
        names.update(tree.xpath("//xs:element/@name", namespaces={"xs": XS_NAMESPACE}))
    return tuple(sorted(names))


def _unexpected(tree: etree._ElementTree, error, element: str, schema: str) -> str:
    try:
        found = tree.xpath(error.path) if error.path else []
    except etree.XPathError:
        found = []
    parent = found[0].getparent() if found else None
    problem = "unknown element"
    if parent is not None:
        problem += f", or not allowed inside <{parent.tag}>"
    guess = difflib.get_close_matches(element, _vocabulary(schema), n=1)
    return problem + (f" (did you mean <{guess[0]}>?)" if guess and guess[0] != element else "")


def _schema_error(path: str, tree: etree._ElementTree, error, schema: str) -> ResourceFileError:
    """Turn libxml2's first complaint into ``path:line: Element: readable problem``."""
    match = _LXML_MESSAGE.match(error.message.strip())
    if match is None:
        return ResourceFileError(path, error.line, None, error.message.strip())
    element, problem = _local_name(match["element"]), match["problem"].strip()
    bad_value = _BAD_VALUE.match(problem)
    if problem.startswith("This element is not expected"):
        problem = _unexpected(tree, error, element, schema)
    elif bad_value:
        kind = _TYPE_WORDS.get(bad_value["type"], f"of type {bad_value['type']}")
        problem = f"{bad_value['value']!r} is not {kind}"
    return ResourceFileError(path, error.line, element, problem)


def _parse_xml(path: str) -> etree._ElementTree:
    if not os.path.exists(path):
        raise ResourceFileError(path, None, None, "file not found")
    if os.path.isdir(path):
        raise ResourceFileError(path, None, None, "is a directory, expected an XML file")
    parser = etree.XMLParser(no_network=True, resolve_entities=False, huge_tree=False)
    try:
        return etree.parse(path, parser)
    except etree.XMLSyntaxError as error:
        raise ResourceFileError(path, error.lineno, None, f"malformed XML: {error.msg}") from None
    except OSError as error:
        raise ResourceFileError(path, None, None, f"cannot read: {error}") from None


def _read_document(path: str, schema: str, root_tag: str, other_kind: str) -> _Document:
    """Parse and schema-check one file; the root check first names a swapped-file mix-up."""
    tree = _parse_xml(path)
    root = tree.getroot()
    if root.tag != root_tag:
        problem = f"expected root element <{root_tag}>"
        if root.tag == other_kind:
            problem += " (this looks like the other file: are resources and project swapped?)"
        raise ResourceFileError(path, root.sourceline, _local_name(str(root.tag)), problem)
    validator = _schema(schema)
    with _VALIDATION_LOCK:  # a shared XMLSchema keeps one error log: validate one at a time
        valid = validator.validate(tree)
        first_error = None if valid else validator.error_log[0]
    if first_error is not None:
        raise _schema_error(path, tree, first_error, schema)
    return _Document(path, root)


class _Document:
    """A validated tree plus the helpers that read it and blame the right line."""

    def __init__(self, path: str, root: etree._Element):
        self.path = path
        self.root = root

    def error(self, element: etree._Element, problem: str) -> ResourceFileError:
        return ResourceFileError(self.path, element.sourceline, _local_name(element.tag), problem)

    def where(self, element: etree._Element) -> str:
        return f"{self.path}:{element.sourceline}"

    def child(self, parent: etree._Element, tag: str) -> etree._Element | None:
        """The single <tag> child, or None; COMPSs allows each of these at most once."""
        found = list(parent.iterchildren(tag))
        if len(found) > 1:
            raise self.error(found[1], f"appears more than once in <{parent.tag}>; give it once")
        return found[0] if found else None

    def text(self, parent: etree._Element, tag: str) -> str | None:
        element = self.child(parent, tag)
        if element is None:
            return None
        value = "".join(element.itertext()).strip()
        return value or None

    def number(self, parent: etree._Element, tag: str, kind: type):
        value = self.text(parent, tag)
        return None if value is None else kind(value)  # the XSD has checked the lexical form

    def section(self, parent: etree._Element, tag: str) -> etree._Element:
        """The single <tag> child, or an empty stand-in so optional sections read as None."""
        element = self.child(parent, tag)
        return etree.Element(tag) if element is None else element


def _check_unique(document: _Document, elements: list) -> None:
    first_line: dict[str, int] = {}
    for element in elements:
        name = element.get("Name").strip()
        if name in first_line:
            raise document.error(
                element, f"name {name!r} is already used at line {first_line[name]}; names must be unique"
            )
        first_line[name] = element.sourceline


def _attached_disks(
    document: _Document, parent: etree._Element, declared: tuple[str, ...] | None = None
) -> tuple[tuple[str, str], ...]:
    """(name, mount point) pairs; with ``declared``, each name must be a known SharedDisk."""
    attached = list(document.section(parent, "SharedDisks").iterchildren("AttachedDisk"))
    _check_unique(document, attached)
    for disk in attached:
        if declared is not None and disk.get("Name").strip() not in declared:
            known = ", ".join(declared) or "none"
            raise document.error(disk, f"SharedDisk {disk.get('Name')!r} is not declared (declared: {known})")
    return tuple((d.get("Name").strip(), document.text(d, "MountPoint") or "") for d in attached)


def _ports(document: _Document, adaptors: etree._Element) -> tuple[int | None, int | None]:
    """Port range of the first adaptor that declares one; every declared range is checked."""
    ranges = []
    for ports in adaptors.iterfind("Adaptor/Ports"):
        low, high = document.number(ports, "MinPort", int), document.number(ports, "MaxPort", int)
        if not (1 <= low <= _MAX_PORT and 1 <= high <= _MAX_PORT):
            raise document.error(ports, f"ports must lie in 1..{_MAX_PORT}, got {low}..{high}")
        if low > high:
            raise document.error(ports, f"MinPort {low} is greater than MaxPort {high}")
        ranges.append((low, high))
    return ranges[0] if ranges else (None, None)


def _adaptor_user(document: _Document, adaptors: etree._Element) -> str | None:
    for adaptor in adaptors.iterchildren("Adaptor"):
        user = document.text(adaptor, "User")
        if user:
            return user
    return None


# -- resources.xml ---------------------------------------------------------------------


def _processor(document: _Document, element: etree._Element) -> Processor:
    units = document.number(element, "ComputingUnits", int)
    if units is not None and units < 1:
        raise document.error(document.child(element, "ComputingUnits"), f"must be at least 1, got {units}")
    properties = tuple(
        (document.text(p, "Key") or "", document.text(p, "Value") or "")
        for p in element.iterchildren("ProcessorProperty")
    )
    return Processor(
        name=element.get("Name").strip(),
        computing_units=1 if units is None else units,
        architecture=document.text(element, "Architecture"),
        type=(document.text(element, "Type") or "CPU").upper(),
        speed_ghz=document.number(element, "Speed", float),
        internal_memory_gb=document.number(element, "InternalMemorySize", float),
        properties=properties,
    )


def _hardware(document: _Document, element: etree._Element) -> dict:
    """Memory, storage, OS and software fields of a ComputeNode, all optional."""
    memory = document.section(element, "Memory")
    storage = document.section(element, "Storage")
    system = document.section(element, "OperatingSystem")
    software = document.section(element, "Software")
    return dict(
        memory_gb=document.number(memory, "Size", float),
        memory_type=document.text(memory, "Type"),
        storage_gb=document.number(storage, "Size", float),
        storage_type=document.text(storage, "Type"),
        os_type=document.text(system, "Type"),
        os_distribution=document.text(system, "Distribution"),
        os_version=document.text(system, "Version"),
        software=tuple((a.text or "").strip() for a in software.iterchildren("Application")),
    )


def _compute_node(document: _Document, element: etree._Element, disks: tuple[str, ...]) -> ComputeNode:
    name = element.get("Name").strip()
    processors = tuple(_processor(document, p) for p in element.iterchildren("Processor"))
    if not processors:
        raise document.error(
            element,
            f"node {name!r} declares no Processor; add e.g. <Processor Name=\"MainProcessor\">"
            "<ComputingUnits>4</ComputingUnits></Processor>",
        )
    adaptors = document.section(element, "Adaptors")
    min_port, max_port = _ports(document, adaptors)
    return ComputeNode(
        name=name,
        processors=processors,
        min_port=min_port,
        max_port=max_port,
        shared_disks=_attached_disks(document, element, disks),
        user=_adaptor_user(document, adaptors),
        source=document.where(element),
        **_hardware(document, element),
    )


def parse_resources_file(path: str | os.PathLike) -> ResourceModel:
    """resources.xml -> model with hardware facts only (no project fields except a User)."""
    document = _read_document(os.fspath(path), "resources.xsd", "ResourcesList", "Project")
    root = document.root
    disk_elements = [*root.iterchildren("SharedDisk"), *root.iterfind("SharedDisks/SharedDisk")]
    _check_unique(document, disk_elements)
    disk_names = tuple(d.get("Name").strip() for d in disk_elements)
    node_elements = list(root.iterchildren("ComputeNode"))
    if not node_elements:
        raise document.error(root, "declares no ComputeNode; the runtime needs at least one")
    _check_unique(document, node_elements)
    nodes = tuple(_compute_node(document, e, disk_names) for e in node_elements)
    return ResourceModel(nodes=nodes, shared_disks=disk_names, resources_path=document.path)


# -- project.xml -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProjectNode:
    """One project <ComputeNode>: how to deploy on a host declared in resources.xml."""

    name: str
    line: int
    user: str | None = None
    install_dir: str | None = None
    working_dir: str | None = None
    app_dir: str | None = None
    pythonpath: str | None = None
    library_path: str | None = None
    environment_script: str | None = None
    limit_of_tasks: int | None = None
    min_port: int | None = None
    max_port: int | None = None


@dataclass(frozen=True, slots=True)
class ProjectFile:
    path: str
    line: int  # of the <Project> root, for file-wide complaints
    nodes: tuple[ProjectNode, ...]
    master_shared_disks: tuple[tuple[str, str], ...] = ()
    master_line: int | None = None  # of <MasterNode>, to blame its disk mounts


def _application(document: _Document, element: etree._Element) -> dict:
    application = document.section(element, "Application")
    return dict(
        app_dir=document.text(application, "AppDir"),
        pythonpath=document.text(application, "Pythonpath"),
        library_path=document.text(application, "LibraryPath"),
        environment_script=document.text(application, "EnvironmentScript"),
    )


def _project_node(document: _Document, element: etree._Element) -> ProjectNode:
    limit = document.number(element, "LimitOfTasks", int)
    if limit is not None and limit < 0:
        raise document.error(document.child(element, "LimitOfTasks"), f"must be 0 or more, got {limit}")
    adaptors = document.section(element, "Adaptors")
    min_port, max_port = _ports(document, adaptors)
    return ProjectNode(
        name=element.get("Name").strip(),
        line=element.sourceline,
        user=document.text(element, "User") or _adaptor_user(document, adaptors),
        install_dir=document.text(element, "InstallDir"),
        working_dir=document.text(element, "WorkingDir"),
        limit_of_tasks=limit,
        min_port=min_port,
        max_port=max_port,
        **_application(document, element),
    )


def parse_project_file(path: str | os.PathLike) -> ProjectFile:
    """project.xml -> the nodes this run uses, with deployment settings."""
    document = _read_document(os.fspath(path), "project.xsd", "Project", "ResourcesList")
    root = document.root
    master = document.child(root, "MasterNode")
    node_elements = list(root.iterchildren("ComputeNode"))
    _check_unique(document, node_elements)
    return ProjectFile(
        path=document.path,
        line=root.sourceline,
        nodes=tuple(_project_node(document, e) for e in node_elements),
        master_shared_disks=() if master is None else _attached_disks(document, master),
        master_line=None if master is None else master.sourceline,
    )
