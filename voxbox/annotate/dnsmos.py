"""DNSMOS, offline: P.835 (SIG, BAK, OVRL) and P.808 with the ONNX models bundled in the
``speechmos`` package, run by onnxruntime (extra ``quality``). Nothing is downloaded.

The scoring follows Microsoft's DNSMOS reference (the DNS Challenge's
``dnsmos_local.py``, which speechmos packages): 16 kHz mono audio as read (no volume
normalisation), repeated until it is at least 9.01 s long, scored on 9.01 s windows
every second; P.835 raw scores go through the non-personalised polynomial fits, P.808
reads a 120-band log-mel spectrogram of each window (minus its last 160 samples);
each score is the mean over the windows.

The ``dnsmos`` stage writes ``dnsmos_sig``, ``dnsmos_bak``, ``dnsmos_ovrl`` and
``dnsmos_p808`` (2 decimals); a corpus's own DNSMOS (Emilia, WenetSpeech4TTS) stays in
``extra`` as a native value.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Dict

import numpy as np

from voxbox.errors import VoxboxError
from voxbox.record import Result, Utterance
from voxbox.stages import Stage, StageOption

SR = 16000
WINDOW_S = 9.01
MAX_BATCH = 4  # windows per ONNX call
# The reference's polynomial fits of the raw P.835 outputs (non-personalised model).
FIT_SIG = np.poly1d([-0.08397278, 1.22083953, 0.0052439])
FIT_BAK = np.poly1d([-0.13166888, 1.60915514, -0.39604546])
FIT_OVRL = np.poly1d([-0.06766283, 1.11546468, 0.04602535])


def model_dir() -> Path:
    """speechmos's bundled model folder, found without importing speechmos's own code
    (which imports requests and pandas helpers this needs none of)."""
    spec = importlib.util.find_spec("speechmos")
    if spec is None or not spec.submodule_search_locations:
        raise VoxboxError("the dnsmos stage needs the speechmos and onnxruntime packages: "
                          "pip install 'voxbox[quality]'")
    folder = Path(list(spec.submodule_search_locations)[0]) / "dnsmos_models"
    for name in ("sig_bak_ovr.onnx", "model_v8.onnx"):
        if not (folder / name).is_file():
            raise VoxboxError(f"speechmos is installed but {folder / name} is missing; reinstall speechmos")
    return folder


class DNSMOS:
    """The two ONNX sessions; :meth:`score` takes 16 kHz mono float audio."""

    def __init__(self, threads: int = 1):
        try:
            import onnxruntime as ort
        except ImportError:
            raise VoxboxError("the dnsmos stage needs onnxruntime: pip install 'voxbox[quality]'") from None
        folder = model_dir()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.p835 = ort.InferenceSession(str(folder / "sig_bak_ovr.onnx"), opts, providers=["CPUExecutionProvider"])
        self.p808 = ort.InferenceSession(str(folder / "model_v8.onnx"), opts, providers=["CPUExecutionProvider"])

    @staticmethod
    def _mel(window: np.ndarray) -> np.ndarray:
        import librosa

        mel = librosa.feature.melspectrogram(y=window, sr=SR, n_fft=321, hop_length=160, n_mels=120)
        return ((librosa.power_to_db(mel, ref=np.max) + 40) / 40).T  # (frames, 120)

    def score(self, audio: np.ndarray) -> Dict[str, float]:
        need = int(WINDOW_S * SR)
        if audio.shape[0] == 0:
            raise ValueError("no samples")
        while audio.shape[0] < need:  # the reference repeats short clips
            audio = np.concatenate([audio, audio])
        hops = int(np.floor(audio.shape[0] / SR) - WINDOW_S) + 1
        wins = [audio[k * SR:k * SR + need] for k in range(hops)]
        wins = np.stack([w for w in wins if w.shape[0] == need]).astype(np.float32)  # (windows, 144160)
        # Both models take a batch dimension: a few windows per call, not one (and not
        # all of a long recording's windows at once: activations grow with the batch).
        raw, p808 = [], []
        for i in range(0, wins.shape[0], MAX_BATCH):
            part = wins[i:i + MAX_BATCH]
            raw.append(self.p835.run(None, {"input_1": part})[0])            # (batch, 3)
            mels = np.stack([self._mel(w[:-160].astype(np.float64)) for w in part]).astype(np.float32)
            p808.append(self.p808.run(None, {"input_1": mels})[0][:, 0])     # (batch,)
        raw, p808 = np.concatenate(raw), np.concatenate(p808)
        return {"sig": float(np.mean(FIT_SIG(raw[:, 0]))), "bak": float(np.mean(FIT_BAK(raw[:, 1]))),
                "ovrl": float(np.mean(FIT_OVRL(raw[:, 2]))), "p808": float(np.mean(p808))}


class DNSMOSStage(Stage):
    """Pipeline stage ``dnsmos``: DNSMOS P.835 + P.808 of every record's audio."""

    name = "dnsmos"
    options = (StageOption("threads", int, 1, "onnxruntime threads per worker", minimum=1),)

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.model = None

    def check(self) -> None:
        model_dir()

    def setup(self) -> None:
        self.model = DNSMOS(self.params["threads"])

    def process(self, rec: Utterance) -> Result:
        from voxbox.annotate.frontend import AudioError, read_audio, read_record_channel0, resample
        from voxbox import media

        self.ensure_setup()
        if not rec.source_path:
            return self.reject(rec, "no_audio_path", rec.missing_audio_detail())
        try:
            raw, sr, _ = read_audio(rec.audio_path) if media.is_plain(rec) else read_record_channel0(rec)
        except AudioError as e:
            return self.reject(rec, e.reason, str(e))
        if raw.shape[0] == 0:
            return self.reject(rec, "no_audio_samples", "the audio holds no samples")
        if not np.all(np.isfinite(raw)):
            return self.reject(rec, "non_finite_samples", "the audio holds NaN or infinite samples")
        s = self.model.score(resample(raw, sr, SR))
        return rec.replace(dnsmos_sig=round(s["sig"], 2), dnsmos_bak=round(s["bak"], 2),
                           dnsmos_ovrl=round(s["ovrl"], 2), dnsmos_p808=round(s["p808"], 2))
