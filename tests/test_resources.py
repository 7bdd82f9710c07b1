"""Resources layer: COMPSs resources.xml / project.xml reading, merging, local detection."""

from __future__ import annotations

import ipaddress
import os
import pickle
import socket
import textwrap
from importlib import resources
from pathlib import Path

import pytest

from runtime.resources import (
    ComputeNode,
    Processor,
    ResourceFileError,
    ResourceModel,
    is_local_host,
    load_resources,
    local_machine_model,
)
from runtime.resources import local as local_module
from runtime.resources.local import AUTO_DETECTED, usable_cores

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "resources"
CLUSTER_RESOURCES = DATA / "cluster_resources.xml"
CLUSTER_PROJECT = DATA / "cluster_project.xml"


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return str(path)


def resources_with_node(tmp_path: Path, body: str, name: str = "resources.xml") -> str:
    """A resources file with one ComputeNode "n" whose inner XML is ``body``."""
    return write(tmp_path, name, f"""
        <?xml version="1.0"?>
        <ResourcesList>
          <ComputeNode Name="n">
        {textwrap.indent(textwrap.dedent(body).strip(), "    ")}
          </ComputeNode>
        </ResourcesList>
        """)


def line_of(path: str, text: str) -> int:
    """1-based line of the first occurrence of ``text``, so tests need not count lines."""
    return next(i for i, line in enumerate(Path(path).read_text().splitlines(), 1) if text in line)


def load_error(*paths) -> ResourceFileError:
    with pytest.raises(ResourceFileError) as caught:
        load_resources(*paths)
    return caught.value


# -- valid files -----------------------------------------------------------------------


def test_realistic_resources_file_gives_two_nodes_with_hardware():
    model = load_resources(CLUSTER_RESOURCES)
    assert [n.name for n in model.nodes] == ["node1.cluster.example", "node2.cluster.example"]
    node1, node2 = model.nodes
    xeon, tesla = node1.processors
    assert xeon == Processor(
        name="Xeon", computing_units=16, architecture="x86_64", type="CPU", speed_ghz=2.6,
        properties=(("ThreadAffinity", "Big"),),
    )
    assert (tesla.type, tesla.computing_units, tesla.internal_memory_gb) == ("GPU", 2, 16.0)
    assert (node1.computing_units, node1.gpus, node1.processor_architecture) == (16, 2, "x86_64")
    assert (node1.memory_gb, node1.memory_type, node1.storage_gb) == (64.0, "DDR4", 500.0)
    assert (node1.os_type, node1.os_distribution, node1.os_version) == ("Linux", "Ubuntu", "22.04")
    assert node1.software == ("Python", "COMPSs")
    assert (node1.min_port, node1.max_port) == (43001, 43010)
    assert node1.shared_disks == (("gpfs", "/gpfs/"),)
    assert node1.source == f"{CLUSTER_RESOURCES}:12"
    assert (node2.computing_units, node2.gpus, node2.memory_gb) == (8, 0, 32.0)
    assert model.shared_disks == ("gpfs", "scratch")
    assert model.total_computing_units == 24
    assert model.resources_path == str(CLUSTER_RESOURCES) and model.project_path is None


def test_project_merges_deployment_settings_in_project_order():
    model = load_resources(CLUSTER_RESOURCES, CLUSTER_PROJECT)
    assert [n.name for n in model.nodes] == ["node2.cluster.example", "node1.cluster.example"]
    node2, node1 = model.nodes
    assert (node1.user, node1.working_dir) == ("alice", "/scratch/alice/")
    assert node1.install_dir == "/opt/superscalar/"
    assert (node1.app_dir, node1.pythonpath, node1.library_path) == (
        "/home/alice/app/", "/home/alice/app/", "/usr/local/lib",
    )
    assert node1.environment_script == "/home/alice/env.sh"
    assert node1.limit_of_tasks == 12
    assert (node1.min_port, node1.max_port) == (44001, 44002)  # project adaptor overrides
    assert node1.gpus == 2 and node1.memory_gb == 64.0  # hardware survives the merge
    assert (node2.working_dir, node2.limit_of_tasks) == ("/tmp/worker2/", 4)
    assert node2.user == "resources_user"  # project silent: resources adaptor User kept
    assert (node2.min_port, node2.max_port) == (43001, 43002)
    assert model.master_shared_disks == (("gpfs", "/gpfs/"),)
    assert model.project_path == str(CLUSTER_PROJECT)


def test_project_restricts_to_the_nodes_it_names(tmp_path):
    project = write(tmp_path, "project.xml", """
        <Project>
          <MasterNode/>
          <ComputeNode Name="node2.cluster.example">
            <InstallDir>/opt/x</InstallDir>
            <WorkingDir>/tmp/w</WorkingDir>
          </ComputeNode>
        </Project>
        """)
    model = load_resources(CLUSTER_RESOURCES, project)
    assert [n.name for n in model.nodes] == ["node2.cluster.example"]
    assert model.total_computing_units == 8


def test_defaults_when_the_file_says_little(tmp_path):
    path = resources_with_node(tmp_path, '<Processor Name="P"/>')
    (node,) = load_resources(path).nodes
    assert node.processors == (Processor(name="P"),)
    assert (node.computing_units, node.gpus, node.processor_architecture) == (1, 0, None)
    assert node.memory_gb is None and node.min_port is None and node.software == ()
    assert (node.user, node.install_dir, node.working_dir, node.limit_of_tasks) == (None,) * 4


def test_free_element_order_and_lower_case_processor_type(tmp_path):
    path = resources_with_node(tmp_path, """
        <Memory><Type>DDR5</Type><Size>8</Size></Memory>
        <Processor Name="G"><Type>gpu</Type><ComputingUnits>1</ComputingUnits></Processor>
        <Processor Name="C"><ComputingUnits>3</ComputingUnits><Type>CPU</Type></Processor>
        """)
    (node,) = load_resources(path).nodes
    assert (node.computing_units, node.gpus, node.memory_gb) == (3, 1, 8.0)


def test_top_level_resources_xml_is_the_small_example():
    (node,) = load_resources(REPO / "resources.xml").nodes
    assert (node.name, node.computing_units, node.memory_gb) == ("localhost", 2, 4.0)


def test_two_nodes_file_is_two_local_workers():
    model = load_resources(DATA / "two_nodes.xml")
    assert [n.name for n in model.nodes] == ["localhost", "127.0.0.1"]
    assert [(n.computing_units, n.memory_gb) for n in model.nodes] == [(1, 2.0), (1, 2.0)]
    assert all(is_local_host(n.name) for n in model.nodes)


def test_compss_only_elements_are_tolerated(tmp_path):
    resources = write(tmp_path, "resources.xml", """
        <ResourcesList>
          <SharedDisks><SharedDisk Name="wrapped"/></SharedDisks>
          <ComputeNode Name="n"><Processor Name="P"><ComputingUnits>2</ComputingUnits></Processor>
          </ComputeNode>
          <DataNode Name="d"><Host>h</Host><Path>/p</Path></DataNode>
          <CloudProvider Name="c"><Endpoint><Server>https://x</Server></Endpoint></CloudProvider>
          <Service wsdl="http://x?wsdl"><Name>s</Name></Service>
          <Http BaseUrl="http://x/"><ServiceName>s</ServiceName></Http>
        </ResourcesList>
        """)
    project = write(tmp_path, "project.xml", """
        <Project>
          <MasterNode><Processor Name="M"><ComputingUnits>4</ComputingUnits></Processor></MasterNode>
          <ComputeNode Name="n"><InstallDir>/i</InstallDir><WorkingDir>/w</WorkingDir></ComputeNode>
          <Cloud><InitialVMs>0</InitialVMs></Cloud>
          <DataNode Name="d"/>
          <Service wsdl="http://x?wsdl"><LimitOfTasks>1</LimitOfTasks></Service>
          <Http BaseUrl="http://x/"/>
          <Facility Name="f"/>
        </Project>
        """)
    model = load_resources(resources, project)
    assert model.shared_disks == ("wrapped",)
    assert model.nodes[0].working_dir == "/w"


def test_schemas_ship_as_package_data():
    schema_dir = resources.files("runtime.resources") / "schema"
    assert {"resources.xsd", "project.xsd"} <= {entry.name for entry in schema_dir.iterdir()}


# -- local machine ---------------------------------------------------------------------


def test_no_resources_file_means_the_local_machine():
    model = load_resources()
    (node,) = model.nodes
    assert node.name == "localhost" and node.source == AUTO_DETECTED
    assert node.computing_units == len(os.sched_getaffinity(0))
    if os.path.exists("/proc/meminfo"):
        assert node.memory_gb is not None and node.memory_gb > 0
    assert model.resources_path is None
    assert model == local_machine_model()


def test_cores_fall_back_to_cpu_count(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert usable_cores() == 3
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert usable_cores() == 1


def test_project_over_the_local_machine(tmp_path):
    project = write(tmp_path, "project.xml", """
        <Project>
          <MasterNode/>
          <ComputeNode Name="localhost"><InstallDir>/i</InstallDir><WorkingDir>/w</WorkingDir>
            <LimitOfTasks>2</LimitOfTasks></ComputeNode>
        </Project>
        """)
    (node,) = load_resources(None, project).nodes
    assert (node.working_dir, node.limit_of_tasks) == ("/w", 2)
    assert node.computing_units == usable_cores()


@pytest.mark.parametrize(
    "name", ["localhost", "LOCALHOST", "127.0.0.1", "127.8.9.10", "::1", "[::1]", "::ffff:127.0.0.1"]
)
def test_loopback_names_are_local(name):
    assert is_local_host(name)


def test_own_names_and_interface_addresses_are_local():
    hostname = socket.gethostname()
    assert is_local_host(hostname) and is_local_host(hostname.upper() + ".")
    assert is_local_host(socket.getfqdn())
    for address in local_module._interface_addresses() or ():
        assert is_local_host(str(address))


@pytest.mark.parametrize("name", ["", "   ", "no-such-host.invalid", "a" * 300, "bad\0name", "999.1.1.1"])
def test_unresolvable_or_odd_names_are_not_local(name):
    assert is_local_host(name) is False


def test_foreign_address_is_not_local():
    foreign = ipaddress.ip_address("203.0.113.77")  # TEST-NET-3, never assigned
    if foreign in (local_module._interface_addresses() or ()):
        pytest.skip("this machine uses TEST-NET-3 addresses")
    assert is_local_host(str(foreign)) is False
    assert local_module._can_bind(foreign) is False  # the stdlib fallback agrees
    assert local_module._can_bind(ipaddress.ip_address("127.0.0.1")) is True


def test_non_string_names_are_not_local():
    assert is_local_host(None) is False
    assert is_local_host(["localhost"]) is False


# -- bad input -------------------------------------------------------------------------


def test_malformed_xml_names_file_and_line(tmp_path):
    path = write(tmp_path, "resources.xml", """
        <ResourcesList>
          <ComputeNode Name="n">
        </ResourcesList>
        """)
    error = load_error(path)
    assert error.path == path and error.line == 3
    assert str(error).startswith(f"{path}:3: ")
    assert "malformed XML" in str(error)


def test_unknown_element_names_file_line_and_element(tmp_path):
    path = resources_with_node(tmp_path, """
        <Processor Name="P"><ComputingUnits>2</ComputingUnits></Processor>
        <Memroy><Size>2</Size></Memroy>
        """)
    error = load_error(path)
    line = line_of(path, "<Memroy>")
    assert (error.path, error.line, error.element) == (path, line, "Memroy")
    assert str(error).startswith(f"{path}:{line}: Memroy: unknown element")
    assert "<ComputeNode>" in str(error) and "did you mean <Memory>?" in str(error)


def test_non_integer_computing_units(tmp_path):
    path = resources_with_node(tmp_path, """
        <Processor Name="P">
          <ComputingUnits>abc</ComputingUnits>
        </Processor>
        """)
    error = load_error(path)
    line = line_of(path, "abc")
    assert (error.line, error.element) == (line, "ComputingUnits")
    assert str(error) == f"{path}:{line}: ComputingUnits: 'abc' is not an integer"


def test_zero_computing_units(tmp_path):
    path = resources_with_node(tmp_path, '<Processor Name="P"><ComputingUnits>0</ComputingUnits></Processor>')
    error = load_error(path)
    assert (error.line, error.element) == (line_of(path, "<ComputingUnits>"), "ComputingUnits")
    assert "at least 1" in str(error)


def test_duplicate_node_names(tmp_path):
    path = write(tmp_path, "resources.xml", """
        <ResourcesList>
          <ComputeNode Name="n"><Processor Name="P"/></ComputeNode>
          <ComputeNode Name="n"><Processor Name="P"/></ComputeNode>
        </ResourcesList>
        """)
    error = load_error(path)
    assert (error.line, error.element) == (3, "ComputeNode")
    assert "already used at line 2" in str(error)


def test_min_port_above_max_port(tmp_path):
    path = resources_with_node(tmp_path, """
        <Processor Name="P"/>
        <Adaptors><Adaptor Name="nio">
          <Ports><MaxPort>43000</MaxPort><MinPort>43010</MinPort></Ports>
        </Adaptor></Adaptors>
        """)
    error = load_error(path)
    assert (error.line, error.element) == (line_of(path, "<Ports>"), "Ports")
    assert "MinPort 43010 is greater than MaxPort 43000" in str(error)


@pytest.mark.parametrize(
    "body, element, words",
    [
        ('<Processor Name="P"/><Memory><Size>1</Size></Memory><Memory><Size>2</Size></Memory>',
         "Memory", "more than once"),
        ('<Processor Name="P"><Speed>fast</Speed></Processor>', "Speed", "'fast' is not a number"),
        ('<Processor Name="P"/><OperatingSystem><Type>Linuxx</Type></OperatingSystem>', "Type", "Linuxx"),
        ("<Memory><Size>2</Size></Memory>", "ComputeNode", "declares no Processor"),
        ('<Processor Name="P"/><SharedDisks><AttachedDisk Name="nope"><MountPoint>/m</MountPoint>'
         "</AttachedDisk></SharedDisks>", "AttachedDisk", "'nope' is not declared"),
        ("<Processor/>", "Processor", "'Name' is required"),
    ],
)
def test_other_node_mistakes_point_at_the_element(tmp_path, body, element, words):
    error = load_error(resources_with_node(tmp_path, body))
    assert error.element == element and error.line is not None and words in str(error)


def test_resources_without_compute_nodes(tmp_path):
    path = write(tmp_path, "resources.xml", '<ResourcesList>\n  <SharedDisk Name="d"/>\n</ResourcesList>\n')
    error = load_error(path)
    assert (error.line, error.element) == (1, "ResourcesList") and "no ComputeNode" in str(error)


def test_project_node_missing_from_resources_names_project_file_and_line(tmp_path):
    project = write(tmp_path, "project.xml", """
        <Project>
          <MasterNode/>
          <ComputeNode Name="node1.cluster.example">
            <InstallDir>/i</InstallDir><WorkingDir>/w</WorkingDir>
          </ComputeNode>
          <ComputeNode Name="node9">
            <InstallDir>/i</InstallDir><WorkingDir>/w</WorkingDir>
          </ComputeNode>
        </Project>
        """)
    error = load_error(CLUSTER_RESOURCES, project)
    assert (error.path, error.line, error.element) == (project, 6, "ComputeNode")
    assert f"'node9' is not declared in {CLUSTER_RESOURCES}" in str(error)
    assert "'node1.cluster.example'" in str(error)  # lists what is declared


def test_project_without_compute_nodes(tmp_path):
    project = write(tmp_path, "project.xml", "<Project>\n  <MasterNode/>\n</Project>\n")
    error = load_error(CLUSTER_RESOURCES, project)
    assert (error.path, error.line, error.element) == (project, 1, "Project")


def test_master_mounting_an_undeclared_disk(tmp_path):
    project = write(tmp_path, "project.xml", """
        <Project>
          <MasterNode>
            <SharedDisks><AttachedDisk Name="typo"><MountPoint>/m</MountPoint></AttachedDisk></SharedDisks>
          </MasterNode>
          <ComputeNode Name="node2.cluster.example"><WorkingDir>/w</WorkingDir></ComputeNode>
        </Project>
        """)
    error = load_error(CLUSTER_RESOURCES, project)
    assert (error.line, error.element) == (2, "MasterNode") and "'typo'" in str(error)


def test_negative_limit_of_tasks(tmp_path):
    project = write(tmp_path, "project.xml", """
        <Project>
          <ComputeNode Name="node2.cluster.example"><LimitOfTasks>-1</LimitOfTasks></ComputeNode>
        </Project>
        """)
    error = load_error(CLUSTER_RESOURCES, project)
    assert (error.line, error.element) == (2, "LimitOfTasks")


def test_missing_file(tmp_path):
    path = str(tmp_path / "nope.xml")
    error = load_error(path)
    assert (error.path, error.line, error.element) == (path, None, None)
    assert str(error) == f"{path}: file not found"
    project_error = load_error(CLUSTER_RESOURCES, path)
    assert project_error.path == path


def test_swapped_files_are_recognised():
    error = load_error(CLUSTER_PROJECT, CLUSTER_RESOURCES)
    assert error.path == str(CLUSTER_PROJECT) and error.element == "Project" and "swapped" in str(error)


def test_error_is_a_picklable_value_error():
    error = ResourceFileError("r.xml", 7, "Memory", "bad")
    assert isinstance(error, ValueError) and str(error) == "r.xml:7: Memory: bad"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.line, copy.element, str(copy)) == ("r.xml", 7, "Memory", "r.xml:7: Memory: bad")


def test_model_records_are_frozen_and_slotted():
    node = ComputeNode(name="n", processors=(Processor(),))
    with pytest.raises(AttributeError):
        node.name = "m"  # type: ignore[misc]
    assert not hasattr(node, "__dict__")
    model = ResourceModel(nodes=(node,))
    assert model.node("n") is node
    with pytest.raises(KeyError, match="declared: n"):
        model.node("m")
