"""Tag groups for per-category metrics: the authors' MagnaTagATune grouping, MTG-Jamendo
prefixes and a YAML file of one's own."""
from pathlib import Path

import yaml

from vcmr.data.magnatagatune import MTAT_TOP50
from vcmr.data.tag_categories import MTAT_CATEGORIES, categories_for


def test_categories(tmp_path, shared_data):
    cats = categories_for(MTAT_TOP50, "magnatagatune")
    grouped = [t for ts in cats.values() for t in ts]
    assert len(grouped) == len(set(grouped)) == 47  # each grouped tag once
    assert set(MTAT_TOP50) - set(grouped) == {"woman", "male vocal", "no voice"}  # as the authors
    assert {g: len(ts) for g, ts in cats.items()} == {"genre": 12, "mood": 7, "instrument": 11,
                                                       "vocals": 12, "other": 5}
    repo_file = Path(__file__).resolve().parents[2] / "config" / "mtat_tag_categories.yaml"
    assert yaml.safe_load(repo_file.read_text()) == MTAT_CATEGORIES
    reference = yaml.safe_load((shared_data / "vcmr" / "mtat_tag_categories.yaml").read_text())
    assert reference == MTAT_CATEGORIES  # the authors' file, group for group and tag for tag
    jam = categories_for(["genre---rock", "mood/theme---calm", "genre---pop"], "mtg-jamendo")
    assert jam == {"genre": ["genre---rock", "genre---pop"], "mood/theme": ["mood/theme---calm"]}
    f = tmp_path / "c.yaml"
    f.write_text("g: [a, zz]\n")
    assert categories_for(["a", "b"], "x", str(f)) == {"g": ["a"]}
