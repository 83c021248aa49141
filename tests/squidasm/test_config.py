"""SquidASM network configs (Python objects and config.yaml) map onto qnodeos
networks parameter by parameter, and what has no counterpart is refused by name."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("netqasm")

from qnodeos import Network  # noqa: E402
from qnodeos.errors import ConfigError  # noqa: E402
from qnodeos.squidasm.config import (  # noqa: E402
    CLinkConfig,
    DefaultCLinkConfig,
    DepolariseLinkConfig,
    GenericQDeviceConfig,
    HeraldedLinkConfig,
    LinkConfig,
    NVQDeviceConfig,
    StackConfig,
    StackNetworkConfig,
    to_network,
)
from qnodeos.squidasm.util import create_complete_graph_network, create_two_node_network  # noqa: E402

YAML = """
qdevice_cfg: &qdevice_cfg
  num_qubits: 3
  T1: 20_000_000_000
  T2: 2_000_000_000
  init_time: 5_000
  single_qubit_gate_time: 2_000
  two_qubit_gate_time: 50_000
  measure_time: 7_000
  single_qubit_gate_depolar_prob: 0.02
  two_qubit_gate_depolar_prob: 0.05
nv_cfg: &nv_cfg
  num_qubits: 3
  electron_init_depolar_prob: 0.03
  prob_error_0: 0.04
  prob_error_1: 0.01
  ec_gate_depolar_prob: 0.02
  electron_T1: 0
  electron_T2: 0
  measure: 4_000
stacks:
  - name: Alice
    qdevice_typ: generic
    qdevice_cfg:
      <<: *qdevice_cfg
  - name: Bob
    qdevice_typ: nv
    qdevice_cfg:
      <<: *nv_cfg
  - name: Charlie
    qdevice_typ: generic
    qdevice_cfg:
      dummy: null
links:
  - stack1: Alice
    stack2: Bob
    typ: depolarise
    cfg:
      fidelity: 0.9
      t_cycle: 10.
      prob_success: 0.8
  - stack1: Bob
    stack2: Charlie
    typ: heralded
    cfg:
      length: 20.0
      p_loss_length: 0.2
      detector_efficiency: 0.9
      visibility: 0.95
clinks:
  - stack1: Alice
    stack2: Bob
    typ: default
    cfg:
      delay: 20_000
  - stack1: Bob
    stack2: Charlie
    typ: instant
"""


def loaded(tmp_path: Path, text: str = YAML) -> dict[str, Any]:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    net = to_network(StackNetworkConfig.from_file(str(path)))
    Network.from_dict(net)  # qnodeos's loader takes it
    return net


def test_yaml_config_maps_parameter_by_parameter(tmp_path: Path) -> None:
    net = loaded(tmp_path)
    alice, bob = net["nodes"]["Alice"], net["nodes"]["Bob"]
    assert alice["device"] == "generic" and alice["qubits"] == 3
    kind = alice["params"]["kinds"]["qubit"]
    assert (kind["t1_ns"], kind["t2_ns"]) == (2e10, 2e9)
    assert kind["gates"]["h"] == {"duration_ns": 2000.0, "error": 0.02}
    assert kind["init"] == {"duration_ns": 5000.0} and kind["meas"] == {"duration_ns": 7000.0}
    assert alice["params"]["two_qubit"]["cnot"]["spec"] == {"duration_ns": 5e4, "error": 0.05}
    assert bob["device"] == "nv" and bob["qubits"] == 3
    e = bob["params"]["kinds"]["electron"]
    assert e["t1_ns"] == math.inf and e["t2_ns"] == math.inf  # 0: no decay
    assert e["meas"] == {"duration_ns": 4000.0, "p01": 0.04, "p10": 0.01}
    assert e["init"]["error"] == 0.03
    assert bob["params"]["two_qubit"]["crx"]["spec"]["error"] == 0.02
    charlie = net["nodes"]["Charlie"]["params"]["kinds"]["qubit"]
    assert charlie["t2_ns"] == 1e9 and charlie["gates"]["x"]["error"] == 0.0  # defaults
    ab, bc = net["links"]
    assert ab == {"nodes": ["Alice", "Bob"], "model": "depolarise", "fidelity": 0.9,
                  "p_success": 0.8, "cycle_ns": 10.0, "seed": 100, "delay_s": 2e-5}  # fmt: skip
    assert bc["model"] == "double_click" and bc["visibility"] == 0.95
    # per photon: 10 km of fibre at 0.2 dB/km, then the detector
    assert bc["eta"] == pytest.approx(10 ** (-0.2 * 10 / 10) * 0.9)
    assert bc["cycle_ns"] == pytest.approx(20.0 / 200_000 * 1e9)
    assert "delay_s" not in bc


def test_python_configs_and_helpers() -> None:
    cfg = create_two_node_network(["Receiver", "Sender"], link_noise=0.2, clink_delay=100)
    net = to_network(cfg)
    Network.from_dict(net)
    (link,) = net["links"]
    assert link["fidelity"] == pytest.approx(1 - 0.2 * 3 / 4) and link["p_success"] == 1.0
    assert link["delay_s"] == pytest.approx(1e-7)
    assert list(net["nodes"]) == ["Receiver", "Sender"]
    graph = create_complete_graph_network(
        ["A", "B", "C"], "depolarise", DepolariseLinkConfig(fidelity=0.8, prob_success=0.5,
                                                             t_cycle=100))  # fmt: skip
    assert len(to_network(graph)["links"]) == 3
    nv = StackConfig(name="N", qdevice_typ="nv", qdevice_cfg=NVQDeviceConfig.perfect_config())
    gen = StackConfig.perfect_generic_config("G")
    two = StackNetworkConfig(stacks=[nv, gen], links=[LinkConfig.perfect_config("N", "G")])
    net = to_network(two)
    assert net["links"][0]["model"] == "perfect"
    assert net["nodes"]["N"]["params"]["kinds"]["electron"]["meas"]["p01"] == 0


@pytest.mark.parametrize(
    "change,error",
    [
        (lambda c: setattr(c.stacks[0], "qdevice_typ", "trapped_ion"),
         "'trapped_ion' cannot be mapped"),
        (lambda c: setattr(c.stacks[0], "qdevice_cfg", {"T3": 1}),
         "unknown GenericQDeviceConfig key(s) 'T3'"),
        (lambda c: setattr(c.links[0], "typ", "nv"), "'nv' cannot be mapped"),
        (lambda c: setattr(c.links[0], "cfg",
                           HeraldedLinkConfig(length=1, dark_count_probability=1e-3)),
         "dark_count_probability"),
        (lambda c: setattr(c.links[0], "cfg", DepolariseLinkConfig(fidelity=0.9, prob_success=1,
                                                                   random_bell_state=True)),
         "random_bell_state"),
        (lambda c: setattr(c, "links", []), "needs a quantum link"),
        (lambda c: setattr(c.links[0], "stack2", "Eve"), "no stack 'Eve'"),
        (lambda c: setattr(c.stacks[0], "qdevice_cfg", GenericQDeviceConfig(T1=10, T2=30)),
         "exceeds 2 T1"),
        (lambda c: setattr(c.clinks[0], "typ", "fibre"), "clink 'fibre' cannot be mapped"),
    ],
)  # fmt: skip
def test_what_cannot_be_mapped_is_refused_by_name(change: Any, error: str) -> None:
    cfg = StackNetworkConfig(
        stacks=[StackConfig.perfect_generic_config("A"), StackConfig.perfect_generic_config("B")],
        links=[LinkConfig(stack1="A", stack2="B", typ="heralded", cfg={"length": 1})],
        clinks=[CLinkConfig(stack1="A", stack2="B", typ="default",
                            cfg=DefaultCLinkConfig(delay=10))],
    )  # fmt: skip
    change(cfg)
    with pytest.raises(ConfigError, match=error.replace("(", r"\(").replace(")", r"\)")):
        to_network(cfg)
