"""voxbox: build VoxBox-style, Spark-TTS-ready speech training data."""

__version__ = "0.1.0"
