"""``govshare``, the command line: one argparse parser (``cli.main``), a module per command group
(``cli.commands``), and how a command finds its chain, manifest and key (``cli.context``)."""
