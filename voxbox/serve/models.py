"""The models behind the reconstruction and synthesis tabs, loaded on first use.

A ``--model-dir`` with ``BiCodec/`` gives the reconstruction: a record's stored tokens
decoded by BiCodec, played beside the original. One that also has ``LLM/`` gives the
synthesis tab (Spark-TTS cloning and controllable TTS through
:class:`spark_tokenize.tts.SparkTTS`), each result annotated by voxbox's annotate stage
(:func:`voxbox.sparktts.synth.annotate_wav`) to compare what was asked with what came out.
Models run one request at a time (a lock); loading happens once.
"""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from voxbox.errors import VoxboxError

SR = 16000
MAX_SYNTH_TEXT = 500  # characters per request


@dataclass
class SynthRequest:
    mode: str  # "clone" or "control"
    text: str
    prompt_audio: Optional[np.ndarray] = None  # clone: the record's audio (channel 0)
    prompt_sr: Optional[int] = None
    prompt_text: Optional[str] = None
    gender: Optional[str] = None  # control
    pitch: Optional[str] = None
    speed: Optional[str] = None
    seed: Optional[int] = None
    constrain: bool = False


class Models:
    """Lazily loaded BiCodec and Spark-TTS from one model folder."""

    def __init__(self, model_dir: Optional[Path], device: str = "cpu", max_new_tokens: int = 3000):
        self.model_dir = Path(model_dir) if model_dir is not None else None
        self.device = device
        self.max_new_tokens = max_new_tokens
        self._lock = threading.Lock()
        self._codec = self._tts = self._annotator = None

    @property
    def has_codec(self) -> bool:
        return self.model_dir is not None

    @property
    def has_llm(self) -> bool:
        return self.model_dir is not None and (self.model_dir / "LLM" / "config.json").is_file()

    def check(self) -> None:
        """The folder's layout and weight headers, without loading anything."""
        if self.model_dir is None:
            return
        if not self.model_dir.is_dir():
            raise VoxboxError(f"{self.model_dir}: model folder not found")
        from voxbox.tokenize.stage import TokenizeStage

        TokenizeStage(model_dir=self.model_dir).check()

    def _load_codec(self):
        from spark_tokenize import BiCodecTokenizer, TokenizerError

        if self._codec is None:
            try:
                self._codec = BiCodecTokenizer(self.model_dir, device=self.device)
            except TokenizerError as e:
                raise VoxboxError(str(e)) from None
        return self._codec

    def _load_tts(self):
        from spark_tokenize import TokenizerError
        from spark_tokenize.tts import SparkTTS

        if self._tts is None:
            try:
                self._tts = SparkTTS(self.model_dir, device=self.device, codec=self._load_codec())
            except TokenizerError as e:
                raise VoxboxError(str(e)) from None
        return self._tts

    def reconstruct(self, global_tokens, semantic_tokens) -> np.ndarray:
        """16 kHz waveform decoded from a record's stored tokens."""
        if not self.has_codec:
            raise VoxboxError("no model folder: start voxbox serve with --model-dir for reconstructions")
        if not global_tokens or not semantic_tokens:
            raise VoxboxError("this record has no BiCodec tokens (built without the tokenize stage)")
        from spark_tokenize import TokenizerError

        with self._lock:
            codec = self._load_codec()
            try:
                wav = codec.detokenize(np.asarray(global_tokens, dtype=np.int64),
                                       np.asarray(semantic_tokens, dtype=np.int64))
            except TokenizerError as e:
                raise VoxboxError(f"cannot decode the stored tokens: {e}") from None
        return np.asarray(wav, dtype=np.float32).reshape(-1)

    def synthesize(self, req: SynthRequest) -> dict:
        """Run one request; returns ``wav`` (16 kHz float array) and what was measured on it."""
        if not self.has_llm:
            raise VoxboxError("synthesis needs a Spark-TTS model folder with LLM/ (--model-dir)")
        from spark_tokenize import TokenizerError
        from spark_tokenize.tts import GenerationOptions

        opts = GenerationOptions(max_new_tokens=self.max_new_tokens, seed=req.seed, constrain=req.constrain)
        with self._lock:
            tts = self._load_tts()
            try:
                if req.mode == "clone":
                    res = tts.clone([req.text], req.prompt_audio, req.prompt_text, sample_rate=req.prompt_sr,
                                    options=opts)[0]
                else:
                    from spark_tokenize.tts import ControlRequest

                    res = tts.control([ControlRequest(req.text, req.gender, req.pitch, req.speed)], options=opts)[0]
            except TokenizerError as e:
                raise VoxboxError(str(e)) from None
            if not res.ok:
                raise VoxboxError(f"the model's output is not speech: {res.error} "
                                  "(tick 'constrain' to allow only well-formed outputs)")
            measured = self._measure(res.wav, req)
        return {"wav": res.wav, "duration": res.duration, "generated_tokens": res.generated_tokens,
                "finished": res.finished, "measured": measured,
                "pitch_value": res.pitch_value, "speed_value": res.speed_value}

    def _measure(self, wav: np.ndarray, req: SynthRequest) -> dict:
        """Annotate the result with voxbox's annotate stage (pitch, speed, levels, gender)."""
        import soundfile as sf

        from voxbox.sparktts.synth import annotate_wav, make_annotator

        if self._annotator is None:
            self._annotator = make_annotator()
        asked_gender = req.gender or "female"
        with tempfile.TemporaryDirectory(prefix="voxbox-serve-synth-") as tmp:
            path = Path(tmp) / "synth.wav"
            sf.write(str(path), np.clip(wav, -1, 1), SR, subtype="PCM_16")
            return annotate_wav(path, req.text, asked_gender, annotator=self._annotator)
