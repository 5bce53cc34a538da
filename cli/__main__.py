"""`python -m cli`: the `tuneboard` command."""

from cli import main

main()
