"""Ops runbooks as commands: ``python -m scripts.ops <subcommand> --stack local``.

One module per runbook; :mod:`scripts.ops.cli` wires them into one entrypoint.
"""
