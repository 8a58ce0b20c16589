"""devinfra: the command line of the devinfra platform repository."""

__version__ = "0.1.0"
