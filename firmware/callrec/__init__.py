"""callrec: firmware of the call recorder appliance."""

__version__ = "0.1.0"
