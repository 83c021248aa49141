"""qnodeos: an operating system for quantum network nodes on simulated hardware."""

__version__ = "0.1.0"
