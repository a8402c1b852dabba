"""AISHELL-3 (openslr 93): {train,test}/wav/<SSB####>/<SSB########>.wav + content.txt."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from voxbox.record import Rejection
from voxbox.sources.corpora.base import Item, Recipe, map_gender, read_table_lines, table_text, unexplained, walk

# AISHELL-3 age groups only partly overlap VoxBox's; each maps to the VoxBox group
# covering most of its range. The raw group stays in extra["native_age_group"].
AGE_GROUPS = {"A": "Child", "B": "Youth-Adult", "C": "Youth-Adult", "D": "Middle-aged"}
SPLITS = ("train", "test")


def read_spk_info(path: Path) -> Dict[str, Tuple[Optional[str], Optional[str], dict]]:
    out = {}
    lines, _ = read_table_lines(path)
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split()
        if len(cols) >= 3:
            group = cols[1].upper()
            out[cols[0]] = (map_gender(cols[2]), AGE_GROUPS.get(group),
                            {"native_age_group": cols[1], "accent": cols[3] if len(cols) > 3 else ""})
    return out


def parse_content(lines: List[str]) -> Dict[str, str]:
    """'SSB00050001.wav<TAB>广 guang3 州 zhou1 ...' -> {'SSB00050001': '广州...'}."""
    out = {}
    for line in lines:
        name, _, rest = line.partition("\t")
        if not rest:
            name, _, rest = line.strip().partition(" ")
        tokens = rest.split()
        if name:
            out[name.strip().removesuffix(".wav")] = "".join(tokens[0::2])
    return out


class AISHELL3(Recipe):
    name = "aishell3"
    subset_help = "train, test"
    top_dirs = ("data_aishell3",)

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        chosen = self.check_subsets(subsets, [s for s in SPLITS if (base / s / "wav").is_dir()])
        info = read_spk_info(base / "spk-info.txt") if (base / "spk-info.txt").is_file() else {}
        for split in chosen:
            lines, err = read_table_lines(base / split / "content.txt")
            texts = parse_content(lines)
            for p in walk(base, split):
                parts = p.split("/")
                name = parts[-1]
                if len(parts) == 2 and name in ("content.txt", "label_train-set.txt", "prosody_label_train-set.txt"):
                    continue
                if len(parts) != 4 or parts[1] != "wav" or not name.endswith(".wav") \
                        or not name.startswith(parts[2]):
                    yield unexplained(p)
                    continue
                text = table_text(p, name[:-4], texts, err, f"{split}/content.txt", self.name)
                if isinstance(text, Rejection):
                    yield text
                    continue
                spk = parts[2]
                gender, age, extra = info.get(spk, (None, None, {}))
                yield Item(p, {"speaker": spk, "text": text, "split": split,
                               "gender": gender, "age": age}, dict(extra))
