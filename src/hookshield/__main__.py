import sys

from hookshield.cli import main

sys.exit(main())
