"""The evaluation that ends ``voxbox train sparktts``: did the model get better?

Two measures, old (the model trained from) and new (the fine-tuned folder) side by side:

- validation loss per example kind (mean cross-entropy per target token on the
  held-out splits), measured before and after training;
- ``synth control`` (:func:`voxbox.sparktts.synth.control_check`) on a fixed grid of
  gender x pitch level x speed level with the same text, sampling settings and seed:
  how often the measured gender and pitch/speed levels match what was asked.

Writes ``OUT/training/eval/report.json`` and ``report.html``; each model's full control
report (wavs, confusion tables) sits in ``eval/old/`` and ``eval/new/``.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Optional

from voxbox.sparktts.synth import _CSS, _jsonable

ATTRIBUTES = ("gender", "pitch", "speed")


def control_summary(rep: dict) -> dict:
    """The headline numbers of a control-check report."""
    tables = rep["tables"]
    return {
        "requested": rep["requested"], "synthesised": rep["synthesised"], "failed": rep["failed"],
        "failures": rep["failures"],
        "accuracy": {a: {"exact": tables[a]["accuracy"], "within_one": tables[a]["within_one"],
                         "measured": tables[a]["measured"]} for a in ATTRIBUTES},
        "value_chain": rep["value_chain"],
    }


def evaluate_run(cfg, out: Path, trained: dict, dev, bf16: bool, echo) -> dict:
    """Write the evaluation report of a finished run; returns it."""
    eval_dir = out / "training" / "eval"
    eval_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "kind": "train_eval", "model_dir": str(cfg.model_dir), "new_model_dir": str(out),
        "mode": "lora" if cfg.lora else "full",
        "validation_loss": trained["validation_loss"],
        "training": {"parameters": trained["parameters"], "train_loss": trained["train_loss"],
                     "throughput": trained["throughput"], "train_runtime_s": trained["train_runtime_s"]},
        "control": None,
    }
    if cfg.eval_control:
        report["control"] = _control_side_by_side(cfg, out, eval_dir, dev, bf16, echo)
    (eval_dir / "report.json").write_text(json.dumps(_jsonable(report), indent=2, ensure_ascii=False) + "\n",
                                          encoding="utf-8")
    (eval_dir / "report.html").write_text(report_html(report), encoding="utf-8")
    for line in summary_lines(report):
        echo(line)
    echo(f"evaluation: {eval_dir / 'report.html'}")
    return report


def _control_side_by_side(cfg, out: Path, eval_dir: Path, dev, bf16: bool, echo) -> dict:
    from spark_tokenize.tts import GenerationOptions

    from voxbox.sparktts.synth import control_check

    opts = GenerationOptions(max_new_tokens=cfg.eval_max_new_tokens, seed=cfg.seed, constrain=cfg.eval_constrain)
    result = {"text": cfg.eval_text, "levels": list(cfg.eval_levels), "repeats": cfg.eval_repeats,
              "generation": _jsonable(vars(opts))}
    for name, model_dir in (("old", cfg.model_dir), ("new", out)):
        echo(f"control check of the {name} model ({model_dir})")
        rep = control_check(model_dir, cfg.eval_text, eval_dir / name, pitch_levels=cfg.eval_levels,
                            speed_levels=cfg.eval_levels, repeats=cfg.eval_repeats, options=opts,
                            device=str(dev), dtype="bfloat16" if bf16 else "float32",
                            batch_size=cfg.eval_batch_size)
        result[name] = {**control_summary(rep), "report": f"{name}/report.html"}
    return result


def _f(v: Optional[float], digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def summary_lines(report: dict) -> list:
    lines = []
    before, after = report["validation_loss"]["before"], report["validation_loss"]["after"]
    kinds = [k for k in after if k != "all"]
    if kinds:
        lines.append("validation loss (before -> after): " + ", ".join(
            f"{k} {_f(before.get(k, {}).get('loss'))} -> {_f(after[k]['loss'])}" for k in kinds))
    control = report.get("control")
    if control:
        old, new = control["old"], control["new"]
        cells = [f"synthesised {new['synthesised']}/{new['requested']} (old {old['synthesised']})"]
        for a in ATTRIBUTES:
            cells.append(f"{a} {_f(new['accuracy'][a]['exact'], 2)} (old {_f(old['accuracy'][a]['exact'], 2)})")
        lines.append("control check, new (old): " + ", ".join(cells))
    return lines


def _failures(summary: dict) -> str:
    return "<br>".join(f"{html.escape(k)} ({v})" for k, v in summary["failures"].items()) or "none"


def _row(label: str, old, new) -> str:
    return f"<tr><th>{html.escape(label)}</th><td>{old}</td><td>{new}</td></tr>"


def report_html(r: dict) -> str:
    h = [f"<!doctype html><meta charset='utf-8'><title>fine-tune evaluation</title><style>{_CSS}</style>",
         "<h1>Spark-TTS fine-tune: old vs new</h1>",
         f"<p>Old: <code>{html.escape(r['model_dir'])}</code>. New: <code>{html.escape(r['new_model_dir'])}</code> "
         f"({r['mode']} fine-tuning of {r['training']['parameters']['trainable']:,} parameters; final training loss "
         f"{_f(r['training']['train_loss'])}; {_f(r['training']['throughput'].get('tokens_per_s'), 0)} tokens/s).</p>",
         "<h2>Validation loss per example kind</h2>"]
    before, after = r["validation_loss"]["before"], r["validation_loss"]["after"]
    if after:
        h.append("<table><tr><th>kind</th><th>old</th><th>new</th><th>examples</th><th>target tokens</th></tr>")
        for k, v in after.items():
            h.append(f"<tr><th>{html.escape(k)}</th><td>{_f(before.get(k, {}).get('loss'))}</td>"
                     f"<td>{_f(v['loss'])}</td><td>{v['examples']}</td><td>{v['target_tokens']}</td></tr>")
        h.append("</table>")
    else:
        h.append("<p>Not measured: the inputs have no validation examples.</p>")
    c = r.get("control")
    h.append("<h2>Control check</h2>")
    if not c:
        h.append("<p>Not run (--no-eval-control).</p>")
        return "\n".join(h) + "\n"
    h.append(f"<p>Text <b>{html.escape(c['text'])}</b>, levels {', '.join(c['levels'])}, {c['repeats']} repeat(s), "
             f"the same sampling settings and seed for both models. Accuracy = share of measured outputs whose "
             f"level matches the request.</p><table><tr><th></th><th>old</th><th>new</th></tr>")
    old, new = c["old"], c["new"]
    h.append(_row("synthesised", f"{old['synthesised']} / {old['requested']}", f"{new['synthesised']} / "
                  f"{new['requested']}"))
    h.append(_row("failures", _failures(old), _failures(new)))
    for a in ATTRIBUTES:
        for key, label in (("exact", "exact"), ("within_one", "within one level")):
            if a == "gender" and key == "within_one":
                continue
            h.append(_row(f"{a} {label}", _f(old["accuracy"][a][key], 2), _f(new["accuracy"][a][key], 2)))
    for attr in ("pitch_value", "speed_value"):
        h.append(_row(f"model {attr} vs measured (mean abs diff)", _f(old["value_chain"][attr]["mean_abs_diff"], 1),
                      _f(new["value_chain"][attr]["mean_abs_diff"], 1)))
    h.append(_row("full report", f"<a href='{old['report']}'>old</a>", f"<a href='{new['report']}'>new</a>"))
    h.append("</table>")
    return "\n".join(h) + "\n"
