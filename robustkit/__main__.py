"""``python -m robustkit``: the command line, as torchrun launches it (``-m robustkit audit``)."""

from robustkit.cli import main

main()
