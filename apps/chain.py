"""End-to-end pairs over a repeater chain (the shipped ``chain`` network): measured
fidelity and rate next to their predictions for swap-as-soon-as-possible.

It runs qnodeos.apps.e2estats between the chain's two ends (``[chain]`` in the
network file; or ``peer_node``) and adds, at the creating end:

- ``fidelity_theory``: Werner links and perfect swaps, F = (3 prod w_i + 1)/4;
- ``rate_hz_theory``: every link attempting at once, noiseless instant swaps, no cutoff:
  one pair per mean time until every link has made its pair, E[max_i c_i G_i]
  (``netlink/chaintheory.py``; (3 - 2p)/(p (2 - p)) attempts for two links);
- ``rate_hz_sequential``: every link's pair made one after another, 1 / sum_i c_i/p_i:
  what a chain whose repeaters attempt on one link at a time makes with one repeater
  (2 hops: it attempts on one side until a herald, then on the other), and a lower
  bound beyond;
- ``rate_hz_turns``: the chain as it runs here, exactly (``turns_time_ns``): a
  repeater's quantum process runs one entanglement round at a time, left link then
  right, so its links take turns; the Markov chain over which halves the nodes hold.
  Given when it applies: swap-as-soon-as-possible without a cutoff or nested
  swapping, repeaters that hold one half per side (fewer than 4 qubits), every link
  of one cycle, at most ``MAX_TURN_LINKS`` hops. Elsewhere ``no_rate_prediction``
  says why there is none, and the printout shows ``rate_hz_theory`` as a reference
  only; with a cutoff on a chain it otherwise models, ``rate_hz_turns_uncut`` is the
  chain's rate without the cutoff (a cutoff only discards halves);
- ``hops``, for plots over the number of hops.

``rate_hz`` is measured from this end's link heralds, in device time (one per
end-to-end pair).

    [[apps]]
    node = "chain.first"
    name = "a"
    module = "qnodeos.apps.chain"
    args = { role = "create", me = "a", peer = "b", pairs = 900 }
"""

from __future__ import annotations

from typing import Any

from qnodeos import sdk
from qnodeos.apps import e2estats
from qnodeos.config.network import NetworkConfig
from qnodeos.netlink.chaintheory import MAX_TURN_LINKS, mean_time_ns, turns_time_ns, werner_fidelity
from qnodeos.netlink.models import LinkModel

# the network file's protocol -> the policy the Markov chain models
MODELLED = {
    "": "asap",
    "qnodeos.netlink.protocols:SwapAsap": "asap",
    "qnodeos.netlink.protocols.SwapAsap": "asap",
    "qnodeos.netlink.protocols:Nested": "nested",
    "qnodeos.netlink.protocols.Nested": "nested",
}
WINDOW_QUBITS = 4  # a repeater with this many qubits holds more than one half per side


def prediction(node: str, peer_node: str) -> dict[str, Any]:
    """Path, hops and the predicted fidelity and rate, from the network this app runs in."""
    net = sdk.network_config()
    path = net.route(node, peer_node) if net is not None else None
    if net is None or path is None:
        return {}
    models = {frozenset(lk.nodes): lk.model for lk in net.links}
    hops = [models[frozenset(h)] for h in zip(path, path[1:], strict=False)]
    time_ns = mean_time_ns([m.success_probability() for m in hops], [m.cycle_ns for m in hops])
    fid = werner_fidelity([m.expected_fidelity() for m in hops])
    out: dict[str, Any] = {
        "path": path,
        "hops": len(hops),
        "fidelity_theory": fid,
        "predicted_fidelity": fid,
        "rate_hz_theory": 1e9 / time_ns,
        "rate_hz_sequential": 1e9 / sum(m.cycle_ns / m.success_probability() for m in hops),
    }
    policy, why_not = turns_model(net, path, hops)
    ps, cycles = [m.success_probability() for m in hops], [m.cycle_ns for m in hops]
    if policy and not why_not:
        out["rate_hz_turns"] = 1e9 / turns_time_ns(ps, cycles, policy)
    else:
        out["no_rate_prediction"] = why_not
        if policy:  # modelled but for its cutoff: the rate without it bounds it
            out["rate_hz_turns_uncut"] = 1e9 / turns_time_ns(ps, cycles, policy)
    return out


def turns_model(net: NetworkConfig, path: list[str], hops: list[LinkModel]) -> tuple[str, str]:
    """The policy ``turns_time_ns`` models the chain with ('' if none: a protocol it
    does not know, repeaters holding more than one half per side, links of unequal
    cycles, too many hops), and why it gives no prediction ('' if it gives one): the
    reasons above, or a cutoff (the Markov chain has no ages)."""
    why: list[str] = []
    policy = MODELLED.get(net.protocol, "")
    if not policy:
        why.append(f"protocol {net.protocol} is not one the Markov chain models")
    big = [n for n in path[1:-1] if net.nodes[n].device.num_qubits >= WINDOW_QUBITS]
    if big:
        why.append(
            f"repeater(s) {', '.join(big)} hold several halves per side "
            f"({WINDOW_QUBITS} qubits or more)"
        )
    if len({m.cycle_ns for m in hops}) != 1:
        cycles = ", ".join(f"{m.cycle_ns:g}" for m in hops)
        why.append(f"the links' cycles differ ({cycles} ns; it needs one grid of cycles)")
    if len(hops) > MAX_TURN_LINKS:
        why.append(f"{len(hops)} hops (it solves up to {MAX_TURN_LINKS})")
    if why:
        return "", "; ".join(why)
    cutoff = net.protocol_args.get("cutoff_s", 0.0)
    if cutoff:
        return policy, f"a cutoff of {cutoff:g} s (the Markov chain does not track ages)"
    return policy, ""


def turns_policy(net: NetworkConfig, path: list[str], hops: list[LinkModel]) -> str:
    """The policy ``turns_time_ns`` predicts the chain's rate with ('' if it gives no
    prediction: ``turns_model`` says why): swap as soon as possible with no cutoff, or
    nested swapping; one half per side at every repeater; one cycle for every link."""
    policy, why_not = turns_model(net, path, hops)
    return "" if why_not else policy


def other_end(node: str) -> str:
    """The chain's end that is not ``node`` ('' if ``node`` is not an end of a chain)."""
    net = sdk.network_config()
    chain = net.chain if net is not None else ()
    if not chain or node not in (chain[0], chain[-1]):
        return ""
    return chain[-1] if node == chain[0] else chain[0]


SLOW = 0.5  # a measured rate below this share of the prediction is explained


async def main(
    node: str, *, role: str, peer_node: str | None = None, **args: Any
) -> dict[str, Any]:
    peer_node = peer_node or other_end(node)
    if not peer_node:
        raise ValueError(
            f"node {node!r} is not an end of a [chain]: give peer_node, the node at the other end"
        )
    r = await e2estats.main(node, role=role, peer_node=peer_node, **args)
    if role == "create":
        r.update(prediction(node, peer_node))
    return r


def format_result(r: dict[str, Any]) -> str:
    if r["role"] == "recv":
        return f"chain: received {r['pairs']} pairs"
    head = f"chain: {r['pairs']} end-to-end pairs"
    if "path" in r:
        head += f" over {r['hops']} hop(s), {'-'.join(r['path'])}"
    fid = f"  fidelity  {r['fidelity']:.3f} ± {r['fidelity_stderr']:.3f}"
    rate = f"  rate      {r['rate_hz']:.1f} ± {r['rate_hz_stderr']:.1f} pairs/s (device time)"
    lines = [head, fid, rate]
    if "fidelity_theory" in r:
        lines[1] += f"   predicted {r['fidelity_theory']:.3f} (Werner links, perfect swaps)"
        bound = f"{r['rate_hz_theory']:.1f} pairs/s with all links attempting at once"
        if "rate_hz_turns" in r:
            lines[2] += f"   predicted {r['rate_hz_turns']:.1f} (links taking turns)"
            lines.append(f"  bound     {bound}")
        else:
            why = r.get("no_rate_prediction") or "the Markov chain does not model this chain"
            lines.append(f"  no rate prediction: {why}")
            if "rate_hz_turns_uncut" in r:
                uncut = f"{r['rate_hz_turns_uncut']:.1f} pairs/s (links taking turns)"
                lines.append(f"  no cutoff {uncut}; a cutoff only discards halves")
            lines.append(f"  reference {bound}, one pair each, swap ASAP, no cutoff")
        if "rate_hz_turns" in r and r["rate_hz"] < SLOW * r["rate_hz_turns"]:
            lines.append(
                "  (the prediction counts the links' physics only: in real processes each "
                "swap also waits\n   for messages between processes, which cost device "
                "time here; --deterministic runs\n   the same network in simulated time, "
                "where the two compare)"
            )
    return "\n".join(lines)
