"""``python -m raftctl`` runs the CLI (same as the ``raftctl`` console script)."""

from raftctl.main import main

main()
