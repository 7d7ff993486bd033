"""The synthesiser's tag vocabulary: the MagnaTagATune top-50 order and consistent random tag sets."""
import numpy as np

from vcmr.demo.synth.tags import MTAT_SYNTH_TAGS, MTAT_TOP50, complete_tags, random_tags


def test_top50_order_matches_real_files(shared_data):
    text = (shared_data / "mtat/pons2017/output_labels_mtt.txt").read_text()
    real = eval(text.split("=", 1)[1])   # a Python list literal in the real file
    assert list(MTAT_TOP50) == real
    assert list(np.load(shared_data / "mtat/won2020/tags.npy")) == real
    assert set(MTAT_SYNTH_TAGS) <= set(real)
    assert list(MTAT_SYNTH_TAGS) == [t for t in real if t in MTAT_SYNTH_TAGS]


def test_random_tags_are_consistent_and_cover_the_vocabulary():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(300):
        tags = random_tags(rng)
        assert tags == complete_tags(tags) and set(tags) <= set(MTAT_SYNTH_TAGS)
        seen |= set(tags)
    assert seen == set(MTAT_SYNTH_TAGS)
