"""The MagnaTagATune tags the synthesiser can render, and consistent tag sets: a style, its
instruments, tempo and dynamics (:func:`random_tags`), with the tags each tag implies
(:func:`complete_tags`).

    from vcmr.demo.synth.tags import random_tags
    tags = random_tags(np.random.default_rng(0))   # e.g. ['drums', 'techno', ..., 'beat']
"""
from __future__ import annotations

import numpy as np

from vcmr.data.magnatagatune import MTAT_TOP50 as _MTAT_TOP50
from vcmr.errors import VcmrError

# The MagnaTagATune top-50 in the order of output_labels_mtt.txt / tags.npy (checked by a test).
MTAT_TOP50 = tuple(_MTAT_TOP50)
INSTRUMENTS = ("guitar", "strings", "drums", "piano", "violin", "synth", "harpsichord", "flute",
               "harp", "cello")
MELODIC = tuple(i for i in INSTRUMENTS if i != "drums")
TEMPO_TAGS = ("fast", "slow")
DYNAMICS_TAGS = ("loud", "quiet", "soft")
STYLE_TAGS = ("classical", "techno", "electronic", "rock", "ambient", "beat", "solo")
_RENDERABLE = set(INSTRUMENTS) | set(TEMPO_TAGS) | set(DYNAMICS_TAGS) | set(STYLE_TAGS)
# The renderable subset of the top-50, in top-50 order.
MTAT_SYNTH_TAGS = tuple(t for t in MTAT_TOP50 if t in _RENDERABLE)
CLASSICAL_INSTRUMENTS = ("piano", "strings", "violin", "cello", "flute", "harpsichord", "harp")


def random_tags(rng: np.random.Generator) -> list[str]:
    """A consistent random tag set (a style, its instruments, tempo and dynamics)."""
    style = rng.choice(["classical", "techno", "rock", "ambient", "electronic", "free"],
                       p=[0.25, 0.12, 0.15, 0.15, 0.13, 0.20])
    tags: set[str] = set()
    tempo = rng.choice(["fast", "slow", None], p=[0.35, 0.3, 0.35])
    dynamics = rng.choice(["loud", "quiet", "soft", None], p=[0.25, 0.2, 0.2, 0.35])
    if style == "classical":
        k = rng.choice([1, 2, 3], p=[0.35, 0.4, 0.25])
        tags |= {"classical", *rng.choice(CLASSICAL_INSTRUMENTS, size=k, replace=False)}
    elif style == "techno":
        tags |= {"techno", "electronic", "synth", "drums", "beat"}
        tempo, dynamics = "fast", rng.choice(["loud", None])
    elif style == "rock":
        tags |= {"rock", "guitar", "drums"}
        tempo, dynamics = rng.choice(["fast", None]), rng.choice(["loud", None], p=[0.7, 0.3])
    elif style == "ambient":
        tags |= {"ambient", "synth"}
        tags |= set(rng.choice(["strings", "piano", "flute", "harp"], size=rng.integers(0, 2)))
        tempo, dynamics = "slow", rng.choice(["quiet", "soft"])
    elif style == "electronic":
        tags |= {"electronic", "synth"}
        if rng.random() < 0.6:
            tags |= {"drums", "beat"}
    else:
        k = rng.choice([1, 2, 3])
        tags |= set(rng.choice(INSTRUMENTS, size=k, replace=False))
    if tempo is not None:
        tags.add(str(tempo))
    if dynamics is not None:
        tags.add(str(dynamics))
    return complete_tags(sorted(tags))


def complete_tags(tags) -> list[str]:
    """Check ``tags`` and add the tags they imply (``techno`` -> synth, drums, beat, electronic;
    ``rock`` -> guitar, drums; ``beat`` -> drums; ``electronic`` -> synth; ``solo`` when only
    one melodic instrument plays and nothing else is asked). Returned in top-50 order."""
    tags = set(tags)
    unknown = sorted(tags - _RENDERABLE)
    if unknown:
        raise VcmrError(f"tags {unknown} cannot be synthesised; use tags from "
                        f"vcmr.demo.synth.tags.MTAT_SYNTH_TAGS: {', '.join(MTAT_SYNTH_TAGS)}")
    for a, b in (("fast", "slow"), ("loud", "quiet"), ("loud", "soft"), ("quiet", "soft")):
        if a in tags and b in tags:
            raise VcmrError(f"tags {a!r} and {b!r} contradict each other; keep one of them")
    if "techno" in tags:
        tags |= {"synth", "drums", "beat", "electronic"}
    if "rock" in tags:
        tags |= {"guitar", "drums"}
    if "beat" in tags:
        tags.add("drums")
    if "electronic" in tags:
        tags.add("synth")
    if not tags & set(INSTRUMENTS):
        tags.add("synth" if "ambient" in tags else "piano")
    melodic = tags & set(MELODIC)
    if "solo" in tags and (len(melodic) != 1 or "drums" in tags):
        raise VcmrError(f"tag 'solo' needs exactly one melodic instrument and no drums, "
                        f"got {sorted(tags & set(INSTRUMENTS))}")
    if len(melodic) == 1 and "drums" not in tags and not tags & {"techno", "rock", "electronic"}:
        tags.add("solo")
    return [t for t in MTAT_TOP50 if t in tags]
