"""Run the `peerline` command as `python -m peerline`."""

from peerline.cli import main

main()
