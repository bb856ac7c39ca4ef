"""``python -m klantwaarde``: the same as the ``klantwaarde`` command."""

from klantwaarde.cli import main

main()
