"""The testbed: run a whole network of nodes and apps from a network file."""
