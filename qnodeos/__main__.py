import sys

if sys.argv[1:2] in (["node"], ["qdevice"]):  # a node's process: one BLAS thread
    from .runtime.blas import before_numpy

    before_numpy()

from .facade.cli import main  # noqa: E402

sys.exit(main())
