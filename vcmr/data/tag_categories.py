"""Tag groups for per-category tagging metrics (genre, mood, instrument, ...).

A YAML file of ``group: [tags]`` wins (``tag_categories`` in the evaluation config); else
MagnaTagATune uses :data:`MTAT_CATEGORIES` and MTG-Jamendo groups tags by their prefix
(``genre---rock`` -> ``genre``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import yaml

from vcmr.errors import VcmrError

# The VCMR authors' grouping of the MagnaTagATune top-50 tags, as in their
# config/mtat_tag_categories.yaml (and ours): 47 tags in 5 groups. Like theirs, it leaves
# woman, male vocal and no voice out of every group; those tags still count in the all-tag
# averages, only not in a per-category one.
MTAT_CATEGORIES = {
    "genre": ["classical", "techno", "electronic", "rock", "indian", "opera", "pop", "classic",
              "new age", "dance", "country", "metal"],
    "mood": ["slow", "fast", "ambient", "loud", "quiet", "soft", "weird"],
    "instrument": ["guitar", "strings", "drums", "piano", "violin", "synth", "harpsichord", "flute",
                   "sitar", "harp", "cello"],
    "vocals": ["vocal", "female", "male", "singing", "vocals", "no vocals", "no vocal", "man",
               "voice", "male voice", "female vocal", "female voice"],
    "other": ["beat", "solo", "beats", "choir", "choral"],
}


def categories_for(tags: Sequence[str], dataset: str, path: Optional[str] = None) -> dict[str, list[str]]:
    """Tag groups for per-category metrics, each restricted to ``tags`` (empty groups dropped)."""
    if path:
        p = Path(path)
        if not p.is_file():
            raise VcmrError(f"tag_categories file {path!r} not found: give a YAML of group: [tags]")
        groups = yaml.safe_load(p.read_text()) or {}
        if not isinstance(groups, dict) or not all(isinstance(v, list) for v in groups.values()):
            raise VcmrError(f"tag_categories file {path!r} must map each group name to a list of tags")
    elif dataset == "magnatagatune":
        groups = MTAT_CATEGORIES
    else:
        groups = {}
        for t in tags:
            if "---" in t:
                groups.setdefault(t.split("---")[0], []).append(t)
    present = set(tags)
    return {g: [str(t) for t in ts if str(t) in present] for g, ts in groups.items()
            if any(str(t) in present for t in ts)}
