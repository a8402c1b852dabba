"""The tokenize stage: spark_tokenize's BiCodec adapted to voxbox records."""
