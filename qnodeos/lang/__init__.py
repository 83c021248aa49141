"""The bottom layer: instructions, gates, wire messages and their codec."""
