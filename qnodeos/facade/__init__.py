"""What a user drives qnodeos with: the command line (``cli``), the Python API
(``api``: ``qnodeos.Network``, ``qnodeos.Results``) and parameter sweeps (``sweep``).
They sit on top: nothing below imports them."""
