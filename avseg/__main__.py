"""python -m avseg: the avseg command line."""

from avseg.cli import main

main()
