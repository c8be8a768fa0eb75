"""The command line (`python -m core`, or `agegender` once installed): one module per command."""
from .main import main

__all__ = ["main"]
