"""CLI command: voxbox report (see voxbox.cli for conventions)."""

from pathlib import Path
from typing import Optional

import typer



def report(
    dataset_dir: str = typer.Argument(..., help="A built dataset folder (the output of `voxbox build`). A URL a build wrote to (s3://..., hf://datasets/OWNER/NAME[@REV]/PATH) is read in place."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="HTML file to write."),
    title: Optional[str] = typer.Option(None, "--title", help="Page title. Default: 'voxbox report: NAME'."),
) -> None:
    """Write one self-contained HTML page of plots and tables about a built dataset.

    Pitch per gender and speed per language with the five-level boundaries, durations,
    hours per corpus/gender/language, the level grid, BiCodec token statistics, rejects
    by reason, and the slowest and oddest records worth listening to.
    """
    from voxbox.release.report import write_report

    from voxbox.cli.output import result

    path = write_report(dataset_dir, out, title=title)
    result({"report": str(path)}, f"wrote {path}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
