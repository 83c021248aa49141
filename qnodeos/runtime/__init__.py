"""Runtime plumbing every qnodeos process stands on: ZeroMQ sockets and the trio
transport over them (``sockets``, ``transport``), CURVE keys and who may talk to whom
(``security``), telling slow from dead (``liveness``, ``procinfo``), rate-limited logs
of bad input (``ratelog``), forking preloaded children (``forking``), the timeline a
process records (``timeline``) and transition tables for state machines
(``statemachine``). Nothing here knows about apps, blocks or links."""
