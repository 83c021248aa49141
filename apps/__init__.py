"""Example applications. Each module has ``async def main(node, **args) -> dict`` (run
by ``qnodeos run``) and can be run alone with ``python -m qnodeos.apps.NAME``."""
