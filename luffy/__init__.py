"""Luffy: the backend of an online course platform."""

__version__ = "0.1.0"
