"""``python -m fieldsafe`` is the same as the ``fieldsafe`` console script."""

from fieldsafe.cli import main

raise SystemExit(main())
