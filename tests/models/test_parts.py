"""The parts table: which part reads which, what runs, and what a loss on a part's output reaches."""
from tsr.models.parts import PART_NAMES, run_order, runs, source_of, upstream


def test_image_and_feature_level_wiring():
    image = ("sr", "head", "recognizer")
    feature = ("sr", "head", "recognizer", "adapter")
    assert PART_NAMES == ("sr", "head", "recognizer", "adapter")
    assert source_of("recognizer", image) == "head" and source_of("recognizer", feature) == "adapter"
    assert source_of("recognizer", ("recognizer",)) is None            # alone: reads the input images
    assert run_order(feature) == ["sr", "head", "adapter", "recognizer"]
    assert upstream("recognizer", image) == {"recognizer", "head", "sr"}
    assert upstream("recognizer", feature) == {"recognizer", "adapter", "sr"}
    assert upstream("adapter", feature) == {"adapter", "sr"}


def test_recognizer_beside_sr_without_a_bridge_does_not_run():
    assert not runs("recognizer", ("sr", "recognizer"))
    assert runs("recognizer", ("recognizer",)) and runs("sr", ("sr", "recognizer"))
    assert run_order(("sr", "recognizer")) == ["sr"]
