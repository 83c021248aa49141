"""Links between nodes: heralded-entanglement models (and, later, the heralding station
and the link-layer protocol). Sans-IO: no sockets, no clock, an injected RNG."""
