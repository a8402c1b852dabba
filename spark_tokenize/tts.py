"""Spark-TTS inference: the Qwen2 LLM plus BiCodec, from an official model folder.

``SparkTTS(model_dir)`` loads ``model_dir/LLM`` with transformers
(``AutoTokenizer``/``AutoModelForCausalLM``) and the BiCodec tokenizer from the same
folder. It builds the official prompts (:mod:`spark_tokenize.prompts`), samples with
the official defaults (temperature 0.8, top-k 50, top-p 0.95, at most 3000 new
tokens), generates several texts in one left-padded batch, and parses the generated
ids with validation: an unusable output becomes a :class:`~spark_tokenize.prompts.ParseError`
that says what came back, instead of the crash inside the codec that the official
code gives.

Optional constrained decoding (``GenerationOptions.constrain``) masks every id the
output grammar does not allow at that position. It is off by default so sampling is
the official one; with it on, every output parses (useful for randomly initialised
test models and for robust batch jobs).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from . import prompts as P
from .errors import TokenizerError

SAMPLE_RATE = 16000


@dataclass
class GenerationOptions:
    """Sampling settings; the defaults are those of the official inference code."""

    temperature: float = 0.8
    top_k: int = 50
    top_p: float = 0.95
    max_new_tokens: int = 3000
    do_sample: bool = True
    repetition_penalty: float = 1.0
    seed: Optional[int] = None
    constrain: bool = False

    def check(self) -> None:
        if self.max_new_tokens < 1:
            raise TokenizerError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.do_sample:
            if self.temperature <= 0:
                raise TokenizerError(f"temperature must be > 0 when sampling, got {self.temperature}")
            if not 0 < self.top_p <= 1:
                raise TokenizerError(f"top_p must be in (0, 1], got {self.top_p}")
            if self.top_k < 0:
                raise TokenizerError(f"top_k must be >= 0 (0 turns it off), got {self.top_k}")
        if self.repetition_penalty <= 0:
            raise TokenizerError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")


@dataclass
class ControlRequest:
    text: str
    gender: str
    pitch: str
    speed: str


@dataclass
class SynthResult:
    """One synthesised utterance, or the reason there is none (``error``)."""

    text: str
    mode: str  # "clone" or "control"
    prompt: str
    wav: Optional[np.ndarray] = None
    sample_rate: int = SAMPLE_RATE
    global_tokens: Optional[List[int]] = None
    semantic_tokens: Optional[List[int]] = None
    pitch_value: Optional[int] = None
    speed_value: Optional[int] = None
    generated_tokens: int = 0
    finished: bool = False  # the model emitted <|im_end|> (False: stopped at max_new_tokens)
    error: Optional[str] = None
    generate_seconds: float = 0.0  # wall time of the batch this result was generated in
    decode_seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.wav is not None and self.error is None

    @property
    def duration(self) -> float:
        return 0.0 if self.wav is None else len(self.wav) / self.sample_rate


def resolve(device: str, dtype: str):
    """(torch.device, torch.dtype): fp32 by default, bf16 on CUDA, fp16 refused (it breaks
    the model). ``auto`` picks CUDA when present, and bf16 there when supported."""
    import torch

    from .tokenizer import resolve_device, resolve_dtype

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = resolve_device(device)
    if str(dtype).lower() == "auto":
        dtype = "bfloat16" if dev.type == "cuda" and torch.cuda.is_bf16_supported() else "float32"
    return dev, resolve_dtype(dtype, dev)


# ----------------------------------------------------------------------------------------
# Constrained decoding
# ----------------------------------------------------------------------------------------

def _one(tok: str) -> Tuple[int, int]:
    i = P.token_id(tok)
    return (i, i + 1)


_SEM = (P.SEMANTIC_OFFSET, P.SEMANTIC_OFFSET + P.SEMANTIC_CODEBOOK)
_GLOB = (P.GLOBAL_OFFSET, P.GLOBAL_OFFSET + P.GLOBAL_CODEBOOK)
_EOS = (P.IM_END_ID, P.IM_END_ID + 1)


def output_grammar(mode: str) -> Tuple[List[List[Tuple[int, int]]], List[Tuple[int, int]]]:
    """(allowed id ranges for each leading position, ranges allowed after them) per prompt kind.

    ``continue``: clone prompt with transcript, the model continues semantic tokens.
    ``clone``: clone prompt without transcript, output starts with <|start_semantic_token|>.
    ``control``: the value chain, 32 globals, then semantic tokens.
    At least one semantic token comes before <|im_end|> may be chosen.
    """
    tail = [_SEM, _EOS]
    if mode == "continue":
        return [[_SEM]], tail
    if mode == "clone":
        return [[_one("<|start_semantic_token|>")], [_SEM]], tail
    if mode == "control":
        pv, pn = P.FAMILY_OFFSETS["pitch_value"]
        sv, sn = P.FAMILY_OFFSETS["speed_value"]
        head = [[_one("<|start_acoustic_token|>")], [(pv, pv + pn)], [(sv, sv + sn)],
                [_one("<|end_acoustic_token|>")], [_one("<|start_global_token|>")]]
        head += [[_GLOB]] * P.N_GLOBAL_TOKENS
        head += [[_one("<|end_global_token|>")], [_one("<|start_semantic_token|>")], [_SEM]]
        return head, tail
    raise ValueError(mode)


def make_constraint(mode: str, prompt_len: int):
    """A transformers LogitsProcessor enforcing :func:`output_grammar` (runs before the warpers)."""
    import torch
    from transformers import LogitsProcessor

    head, tail = output_grammar(mode)

    class SparkOutputConstraint(LogitsProcessor):
        def __call__(self, input_ids, scores):
            pos = input_ids.shape[1] - prompt_len
            ranges = head[pos] if pos < len(head) else tail
            out = torch.full_like(scores, float("-inf"))
            for lo, hi in ranges:
                out[:, lo:hi] = scores[:, lo:hi]
            return out

    return SparkOutputConstraint()


# ----------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------

class SparkTTS:
    """Spark-TTS LLM + BiCodec from an official model folder (``LLM/``, ``BiCodec/``, ...).

    ``codec``: an already loaded ``BiCodecTokenizer`` to share; loaded from
    ``model_dir`` when not given. BiCodec always runs in float32.
    """

    def __init__(self, model_dir: Union[str, Path], device: str = "cpu", dtype: str = "float32", codec=None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_dir = Path(model_dir)
        llm_dir = self.model_dir / "LLM"
        if not (llm_dir / "config.json").is_file():
            raise TokenizerError(f"{self.model_dir}: not a Spark-TTS model folder (no LLM/config.json)")
        dev, self.dtype = resolve(device, dtype)
        self.device = str(dev)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(llm_dir))
            self.model = AutoModelForCausalLM.from_pretrained(str(llm_dir), **_dtype_kwarg(self.dtype))
        except (OSError, ValueError) as e:  # ValueError: transformers found no tokenizer files
            raise TokenizerError(f"{llm_dir}: cannot load the LLM ({str(e).splitlines()[0].strip()})") from None
        self.model.to(self.device).eval()
        self.tokenizer.padding_side = "left"
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else P.ENDOFTEXT_ID
        check_tokenizer(self.tokenizer, llm_dir)
        if self.model.config.vocab_size < P.VOCAB_SIZE:
            raise TokenizerError(
                f"{llm_dir}: vocab_size {self.model.config.vocab_size} < {P.VOCAB_SIZE} Spark-TTS tokens")
        if codec is None:
            import spark_tokenize

            codec = spark_tokenize.BiCodecTokenizer(self.model_dir, device=self.device)
        self.codec = codec
        self._torch = torch

    # -- prompts ---------------------------------------------------------------------
    def reference_tokens(self, prompt_audio, sample_rate: Optional[int] = None) -> Tuple[List[int], List[int]]:
        """(32 global tokens, semantic tokens) of a reference clip (path or array)."""
        glob, sem = self.codec.tokenize(prompt_audio, sample_rate=sample_rate)
        return P._as_int_list(glob), P._as_int_list(sem)

    # -- generation ------------------------------------------------------------------
    def generate_ids(self, prompts: Sequence[str], mode: str, options: Optional[GenerationOptions] = None,
                     seed: Optional[int] = None) -> Tuple[List[List[int]], float]:
        """Generate for prompts of one kind in one left-padded batch.

        Returns the new ids of each prompt (padding after <|im_end|> removed) and the
        wall seconds the batch took. ``seed`` overrides ``options.seed``.
        """
        torch = self._torch
        opts = options or GenerationOptions()
        opts.check()
        enc = self.tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False)
        input_ids = enc["input_ids"].to(self.device)
        attention = enc["attention_mask"].to(self.device)
        kwargs = dict(
            max_new_tokens=opts.max_new_tokens,
            do_sample=opts.do_sample,
            eos_token_id=P.IM_END_ID,
            pad_token_id=self.pad_id,
        )
        if opts.do_sample:
            kwargs.update(temperature=opts.temperature, top_k=opts.top_k, top_p=opts.top_p)
        if opts.repetition_penalty != 1.0:
            kwargs["repetition_penalty"] = opts.repetition_penalty
        if opts.constrain:
            from transformers import LogitsProcessorList

            kwargs["logits_processor"] = LogitsProcessorList([make_constraint(mode, input_ids.shape[1])])
        seed = opts.seed if seed is None else seed
        if seed is not None:
            torch.manual_seed(seed)
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(input_ids=input_ids, attention_mask=attention, **kwargs)
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        new = out[:, input_ids.shape[1]:].cpu().tolist()
        result = []
        for row in new:
            if P.IM_END_ID in row:
                row = row[: row.index(P.IM_END_ID) + 1]
            result.append(row)
        return result, seconds

    def _finish(self, results: List[SynthResult], ids: List[List[int]], seconds: float,
                expect_global: bool, ref_global: Optional[List[int]]) -> None:
        ready = []
        for res, row in zip(results, ids):
            res.generated_tokens = len(row)
            res.generate_seconds = seconds
            try:
                parsed = P.parse_output(row, expect_global=expect_global, pad_id=self.pad_id)
            except P.ParseError as e:
                res.error = str(e)
                res.finished = P.IM_END_ID in row
                continue
            res.finished = parsed.finished
            res.semantic_tokens = parsed.semantic_tokens
            res.global_tokens = parsed.global_tokens if expect_global else list(ref_global)
            res.pitch_value, res.speed_value = parsed.pitch_value, parsed.speed_value
            ready.append(res)
        if not ready:
            return
        t0 = time.perf_counter()
        wavs = self.codec.detokenize_batch([np.asarray(r.global_tokens, dtype=np.int64) for r in ready],
                                           [np.asarray(r.semantic_tokens, dtype=np.int64) for r in ready])
        per = (time.perf_counter() - t0) / len(ready)
        for res, wav in zip(ready, wavs):
            res.wav = np.asarray(wav, dtype=np.float32).reshape(-1)
            res.decode_seconds = per

    def clone(self, texts: Union[str, Sequence[str]], prompt_audio, prompt_text: Optional[str] = None,
              sample_rate: Optional[int] = None, options: Optional[GenerationOptions] = None,
              batch_size: int = 8) -> List[SynthResult]:
        """Voice cloning of ``prompt_audio`` for each text; never raises on a bad output
        (see ``SynthResult.error``)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        glob, sem = self.reference_tokens(prompt_audio, sample_rate)
        if prompt_text is not None and not prompt_text.strip():
            prompt_text = None
        mode = "continue" if prompt_text is not None else "clone"
        prompts = [P.clone_prompt(t, glob, sem, prompt_text) for t in texts]
        results = [SynthResult(text=t, mode="clone", prompt=p) for t, p in zip(texts, prompts)]
        self._run(results, mode, options, batch_size, expect_global=False, ref_global=glob)
        return results

    def control(self, requests: Sequence[Union[ControlRequest, tuple]], options: Optional[GenerationOptions] = None,
                batch_size: int = 8) -> List[SynthResult]:
        """Controllable TTS (a new voice from gender + pitch level + speed level)."""
        reqs = [r if isinstance(r, ControlRequest) else ControlRequest(*r) for r in requests]
        results = []
        for r in reqs:
            prompt = P.control_prompt(r.text, r.gender, r.pitch, r.speed)
            res = SynthResult(text=r.text, mode="control", prompt=prompt)
            res.extra.update(gender=r.gender, pitch=P.LEVELS[P.level_index(r.pitch)],
                             speed=P.LEVELS[P.level_index(r.speed)])
            results.append(res)
        self._run(results, "control", options, batch_size, expect_global=True, ref_global=None)
        return results

    def _run(self, results, mode, options, batch_size, expect_global, ref_global) -> None:
        opts = options or GenerationOptions()
        for b, start in enumerate(range(0, len(results), max(1, batch_size))):
            chunk = results[start:start + batch_size]
            seed = None if opts.seed is None else opts.seed + b
            ids, seconds = self.generate_ids([r.prompt for r in chunk], mode, opts, seed=seed)
            self._finish(chunk, ids, seconds, expect_global, ref_global)

    def synthesize(self, text: str, *, prompt_audio=None, prompt_text: Optional[str] = None,
                   gender: Optional[str] = None, pitch: Optional[str] = None, speed: Optional[str] = None,
                   options: Optional[GenerationOptions] = None) -> SynthResult:
        """One utterance: cloning when ``prompt_audio`` is given, control when ``gender`` is.
        Raises :class:`ParseError` when the model's output is unusable."""
        if (prompt_audio is None) == (gender is None):
            raise TokenizerError(
                "give either a prompt audio (voice cloning) or a gender with pitch and speed (control)")
        if prompt_audio is not None:
            if pitch is not None or speed is not None:
                raise TokenizerError("pitch/speed apply to controllable TTS only (give a gender, not a prompt audio)")
            res = self.clone([text], prompt_audio, prompt_text, options=options)[0]
        else:
            if pitch is None or speed is None:
                raise TokenizerError("controllable TTS needs gender, pitch and speed")
            res = self.control([ControlRequest(text, gender, pitch, speed)], options=options)[0]
        if res.error:
            raise P.ParseError(f"unusable model output: {res.error}")
        return res


def check_tokenizer(tokenizer, where) -> None:
    """Refuse a tokenizer whose Spark-TTS token ids differ from the released layout."""
    probes = ["<|bicodec_global_0|>", "<|bicodec_semantic_0|>", "<|bicodec_semantic_8191|>",
              "<|task_controllable_tts|>", "<|start_content|>", "<|end_semantic_token|>", P.IM_END]
    for tok in probes:
        got = tokenizer.convert_tokens_to_ids(tok)
        want = P.token_id(tok)
        if got != want:
            raise TokenizerError(f"{where}: tokenizer maps {tok} to {got}, the Spark-TTS layout needs {want}")


def _dtype_kwarg(dtype) -> dict:
    import transformers

    major = int(transformers.__version__.split(".")[0])
    minor = int(transformers.__version__.split(".")[1])
    # transformers renamed torch_dtype to dtype in 4.56.
    return {"dtype": dtype} if (major, minor) >= (4, 56) else {"torch_dtype": dtype}
