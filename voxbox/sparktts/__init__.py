"""Spark-TTS on a built dataset: training-data export and synthesis checks."""
