#!/usr/bin/env bash
# The official Spark-TTS BiCodec code, for benchmarks/bench_tokenize.py to measure against.
#
# spark-tts-lib 0.2.1 (PyPI) packages SparkAudio/Spark-TTS's `sparktts` modules; on the shared
# fixture it reproduces the official outputs (tokens identical on all five cases). It is installed
# with --no-deps into a private folder (never into the project's environment): its pins would
# replace torch. torchaudio has no wheel for this torch, so torchaudio 2.11.1 is installed and its
# compiled extension moved aside; the only part the reference uses, the mel transform, is pure
# Python on torch.stft.
#
#   bash benchmarks/reference_env.sh [DEST]     (default /tmp/sparktts-ref)
set -euo pipefail
DEST="${1:-/tmp/sparktts-ref}"
SITE="$DEST/site"
mkdir -p "$SITE"
python3 -m pip install --quiet --no-deps --target "$SITE" \
    spark-tts-lib==0.2.1 einops==0.8.1 einx==0.3.0 frozendict omegaconf==2.3.0 \
    antlr4-python3-runtime==4.9.3 retrying torchaudio==2.11.1
if compgen -G "$SITE/torchaudio/lib/*.so" > /dev/null; then
    mkdir -p "$DEST/torchaudio-ext-unused"
    mv "$SITE"/torchaudio/lib/*.so "$DEST/torchaudio-ext-unused/"
fi
PYTHONPATH="$SITE" python3 -c "from spark_tts_lib.models.audio_tokenizer import BiCodecTokenizer" \
    && echo "reference ready: $SITE"
