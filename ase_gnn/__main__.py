"""``python -m ase_gnn`` runs the command line."""

import sys

from ase_gnn.cli.main import main

sys.exit(main())
