"""`python -m srnet_cli` runs the same CLI as the `srnet` console script."""

from srnet_cli.entry import main

main()
