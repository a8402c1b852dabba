"""The ASR plug-in of the annotate stage (``asr_model``): any Hugging Face
automatic-speech-recognition model (Whisper, wav2vec2 CTC, ...; a local folder or a Hub
id), run through transformers' ``pipeline`` on the clip the front end loaded (channel 0,
16 kHz unless the model's feature extractor says otherwise, volume-normalised, not
trimmed), a batch at a time, loaded once per worker.

What it writes (VoxBox's ASR re-check of given transcripts, and text for audio without
one, e.g. VAD segments):

- a record without text gets the hypothesis as ``text``, with ``text_source = "asr"``
  and ``asr_model``; its ``asr_wer``/``asr_cer`` stay null (``text_from_asr``: there is
  nothing to check against). A record whose text an earlier ASR run wrote is
  transcribed again;
- a record with text keeps it and gets ``asr_text`` (the hypothesis), ``asr_model``, and
  ``asr_wer`` (word error rate) and ``asr_cer`` (character error rate, the one that
  means something for Chinese and Japanese, which have no spaces between words),
  computed with jiwer on both texts normalised by :func:`normalize` (Unicode NFKC, case
  folded, punctuation and symbols dropped, spaces collapsed; for CER spaces are dropped
  too). An empty normalised reference gives null rates (``empty_reference``).

The rates are stored at 4 dp; the ``filter`` stage's ``max_wer`` / ``max_cer`` rules
read them.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from voxbox.errors import VoxboxError, first_line
from voxbox.reasons import check

TEXT_SOURCE = "asr"
ASR_FIELDS = ("asr_model", "asr_text", "asr_wer", "asr_cer")
TEXT_FROM_ASR = check("text_from_asr", "null")       # the text is the hypothesis: no WER/CER
EMPTY_REFERENCE = check("empty_reference", "null")   # the given text normalises to nothing
ASR_EMPTY = check("asr_empty", "null")               # the model heard no words


def normalize(text: str) -> str:
    """Text as WER/CER compare it: NFKC, case folded, dashes as spaces, other punctuation,
    symbols and control characters removed ("don't" -> "dont"), whitespace collapsed."""
    out = []
    for c in unicodedata.normalize("NFKC", text).casefold():
        cat = unicodedata.category(c)
        if c.isspace() or cat[0] == "Z" or cat == "Pd":
            out.append(" ")
        elif cat[0] not in "PSC":
            out.append(c)
    return " ".join("".join(out).split())


def error_rates(reference: str, hypothesis: str) -> Tuple[Optional[float], Optional[float]]:
    """(WER, CER) of ``hypothesis`` against ``reference``, both normalised; (None, None)
    when the reference normalises to nothing (a rate of what?)."""
    import jiwer

    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        return None, None
    wer = jiwer.wer(ref, hyp) if hyp else 1.0
    ref_c, hyp_c = ref.replace(" ", ""), hyp.replace(" ", "")
    cer = jiwer.cer(ref_c, hyp_c) if hyp_c else 1.0
    return round(float(wer), 4), round(float(cer), 4)


def check_model(spec: str) -> None:
    """A spec that is clearly a local path must exist (instead of a Hub lookup error)."""
    if not Path(spec).expanduser().exists() and (spec.startswith((".", "/", "~")) or spec.count("/") > 1):
        raise VoxboxError(f"cannot load asr_model '{spec}': no such folder (give a local model folder, or a "
                          "Hugging Face model id like openai/whisper-small)")


class Transcriber:
    """One transformers ASR pipeline; :meth:`setup` loads it (once per worker)."""

    def __init__(self, model: str, device: str = "cpu", batch_size: int = 8):
        check_model(model)
        self.model_id, self.device, self.batch_size = model, device, batch_size
        self._pipe = None
        self.sampling_rate = 16000

    @property
    def name(self) -> str:
        return self.model_id

    def setup(self) -> "Transcriber":
        from transformers import pipeline

        try:
            self._pipe = pipeline("automatic-speech-recognition", model=str(Path(self.model_id).expanduser())
                                  if Path(self.model_id).expanduser().exists() else self.model_id,
                                  device=self.device)
        except (OSError, ValueError) as e:
            first = first_line(e)
            raise VoxboxError(f"cannot load asr_model '{self.model_id}': {first}") from None
        extractor = getattr(self._pipe, "feature_extractor", None)
        self.sampling_rate = int(getattr(extractor, "sampling_rate", 16000) or 16000)
        return self

    def transcribe(self, clips: Sequence[np.ndarray], sr: int) -> List[str]:
        """The hypothesis of each mono clip at ``sr`` (whitespace collapsed). Clips longer
        than the model's window (Whisper: 30 s) go one at a time, through the model's
        long-form path: a batch cannot mix them with padded short clips."""
        from voxbox.annotate.frontend import resample

        if self._pipe is None:
            self.setup()
        inputs = [np.asarray(resample(c, sr, self.sampling_rate) if sr != self.sampling_rate else c,
                             dtype=np.float32) for c in clips]
        window = getattr(getattr(self._pipe, "feature_extractor", None), "n_samples", None)
        long = [i for i, x in enumerate(inputs) if window and len(x) > window]
        short = [i for i in range(len(inputs)) if i not in set(long)]
        out = [""] * len(inputs)
        if short:
            batch = [{"raw": inputs[i], "sampling_rate": self.sampling_rate} for i in short]
            for i, o in zip(short, self._pipe(batch, batch_size=min(self.batch_size, len(batch)))):
                out[i] = " ".join(str(o.get("text") or "").split())
        for i in long:
            o = self._pipe({"raw": inputs[i], "sampling_rate": self.sampling_rate})
            out[i] = " ".join(str(o.get("text") or "").split())
        return out


def with_hypothesis(rec, hypothesis: str, model: str):
    """``rec`` with the ASR fields of one hypothesis (see the module docstring)."""
    reasons: Dict[str, str] = {k: v for k, v in (rec.null_reasons or {}).items()
                               if k not in ASR_FIELDS and k not in ("text", "text_source")}
    if rec.text is None or rec.text_source == TEXT_SOURCE:
        text = hypothesis or None
        reasons.update(asr_wer=TEXT_FROM_ASR, asr_cer=TEXT_FROM_ASR)
        if text is None:
            reasons.update(text=ASR_EMPTY, asr_text=ASR_EMPTY)
        return rec.replace(text=text, text_source=TEXT_SOURCE if text else None, asr_model=model,
                           asr_text=hypothesis or None, asr_wer=None, asr_cer=None, null_reasons=reasons or None)
    wer, cer = error_rates(rec.text, hypothesis)
    if wer is None:
        reasons.update(asr_wer=EMPTY_REFERENCE, asr_cer=EMPTY_REFERENCE)
    if not hypothesis:
        reasons["asr_text"] = ASR_EMPTY
    return rec.replace(asr_model=model, asr_text=hypothesis or None, asr_wer=wer, asr_cer=cer,
                       null_reasons=reasons or None)
