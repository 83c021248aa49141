import sys

from .facade.cli import main  # (a node's process gets one BLAS thread there)

sys.exit(main())
