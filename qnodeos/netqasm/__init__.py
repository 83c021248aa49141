"""NetQASM on qnodeos: NetQASM SDK apps run unchanged, their subroutines run by the node.

- ``decode`` (node side): NetQASM binary or text, read by the netqasm package, checked.
- ``qnodeos.kernel.nqrun``: the node runs a NetQASM subroutine as one block.
- ``backend`` (app side): what ``netqasm.sdk.external`` exports, on a qnodeos session.
- ``runner``: one party of an app folder as a qnodeos app; ``folder``: the folder as a
  network (``qnodeos netqasm APP_DIR``).

Needs the netqasm package: ``pip install 'qnodeos[netqasm]'``.
"""
