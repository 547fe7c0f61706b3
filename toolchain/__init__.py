"""petri: forward architecture search for image classifiers under a measured latency budget."""

__version__ = "0.1.0"
