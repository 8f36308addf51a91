"""``python -m app`` runs the segmend command line."""

import sys

from app.cli import main

sys.exit(main())
