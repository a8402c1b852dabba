"""spark_tokenize: a from-scratch BiCodec (Spark-TTS audio tokenizer) and Spark-TTS inference."""
