"""The quantum process: simulated devices, density-matrix physics, and its service."""
