"""``python -m controller``: the ``soleguard`` command."""

from controller.entry import main

main()
