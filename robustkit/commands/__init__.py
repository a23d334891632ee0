"""CLI command functions, registered on the Typer app in robustkit.cli."""
