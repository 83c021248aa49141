"""The version of qnodeos, in a module of its own so that any layer (the CLI's
``--version``, a run's metadata) reads it without importing the package's public
facade (``qnodeos.Network``)."""

__version__ = "0.1.0"
