"""The Spark-TTS model folder, as published in SparkAudio/Spark-TTS-0.5B::

    MODEL_DIR/config.yaml
    MODEL_DIR/BiCodec/{config.yaml, model.safetensors}
    MODEL_DIR/wav2vec2-large-xlsr-53/{config.json, preprocessor_config.json,
                                      model.safetensors | pytorch_model.bin}
    MODEL_DIR/LLM/{config.json, model.safetensors | model.safetensors.index.json,
                   tokenizer.json | vocab.json, tokenizer_config.json}

The one description of that folder: the tokenizer checks it before loading and
``voxbox fetch-model`` checks a download against it. No torch here, so a check is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from .errors import TokenizerError

BICODEC_SUBDIR = "BiCodec"
WAV2VEC2_SUBDIR = "wav2vec2-large-xlsr-53"

#: The files of each part of the folder; "a|b" means either will do.
MODEL_FILES: Dict[str, Tuple[str, ...]] = {
    "config.yaml": ("config.yaml",),
    "BiCodec/": ("BiCodec/config.yaml", "BiCodec/model.safetensors"),
    "wav2vec2-large-xlsr-53/": (
        "wav2vec2-large-xlsr-53/config.json",
        "wav2vec2-large-xlsr-53/preprocessor_config.json",
        "wav2vec2-large-xlsr-53/model.safetensors|wav2vec2-large-xlsr-53/pytorch_model.bin",
    ),
    "LLM/": (
        "LLM/config.json",
        "LLM/model.safetensors|LLM/model.safetensors.index.json",
        "LLM/tokenizer.json|LLM/vocab.json",
        "LLM/tokenizer_config.json",
    ),
}
#: The parts BiCodec tokenization reads (the 2 GB LLM/ is only for synthesis).
TOKENIZER_PARTS = ("config.yaml", "BiCodec/", "wav2vec2-large-xlsr-53/")
#: Published, but the tokenizer loads without it (it defaults to 16 kHz input).
TOKENIZER_OPTIONAL = ("wav2vec2-large-xlsr-53/preprocessor_config.json",)


@dataclass(frozen=True)
class ModelLayout:
    root: Path

    @property
    def tokenizer_config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def bicodec_config(self) -> Path:
        return self.root / BICODEC_SUBDIR / "config.yaml"

    @property
    def bicodec_weights(self) -> Path:
        return self.root / BICODEC_SUBDIR / "model.safetensors"

    @property
    def wav2vec2_dir(self) -> Path:
        return self.root / WAV2VEC2_SUBDIR

    def missing(self, parts: Sequence[str] = tuple(MODEL_FILES), optional: Sequence[str] = ()) -> List[str]:
        """The files of ``parts`` the folder lacks, alternatives joined by "or" (empty when complete)."""
        out = []
        for part in parts:
            for spec in MODEL_FILES[part]:
                options = spec.split("|")
                if spec not in optional and not any((self.root / o).is_file() for o in options):
                    out.append(" or ".join(options))
        return out

    def check(self) -> "ModelLayout":
        """Fail with the first piece the tokenizer needs and lacks, before anything is loaded."""
        if not self.root.is_dir():
            what = "is a file, not a model folder" if self.root.exists() else "model folder not found"
            raise TokenizerError(f"{self.root}: {what}")
        missing = self.missing(TOKENIZER_PARTS, optional=TOKENIZER_OPTIONAL)
        if missing:
            raise TokenizerError(f"model folder {self.root} lacks {missing[0]}")
        return self
