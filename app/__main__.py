"""``python -m app`` runs the segmend command line."""

import sys

from app.launcher import main

sys.exit(main())
