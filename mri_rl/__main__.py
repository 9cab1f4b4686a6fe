"""``python -m mri_rl`` runs the ``mri-rl`` command line."""

import sys

from mri_rl.cli import main

sys.exit(main())
