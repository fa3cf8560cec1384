"""The `vantage` subcommands, one module per command group (`vantage.cli` builds the parser).

Each module adds its commands to the parser (`add_*`) and runs them (`cmd_*`); what a command
needs beyond the settings and the standard library it imports when it runs, so `vantage
--help` loads neither torch nor the servers' clients.
"""

from __future__ import annotations

import argparse
from typing import TypeAlias

# What `ArgumentParser.add_subparsers` returns: each `add_*` adds its command to it.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
