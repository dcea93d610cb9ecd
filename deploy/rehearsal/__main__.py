"""`python -m deploy.rehearsal`: see rehearse.py."""

import sys

from deploy.rehearsal.rehearse import main

sys.exit(main())
