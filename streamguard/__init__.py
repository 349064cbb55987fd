"""StreamGuard: reproducible training of code-vulnerability detectors."""
__version__ = "0.1.0"
