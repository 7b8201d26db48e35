import pytest

from tsr.metrics.text import normalize_for_accuracy, normalized_edit_distance, word_correct


def test_normalisation_keeps_lowercase_alphanumerics_only():
    assert normalize_for_accuracy("Hello, World-2!") == "helloworld2"
    assert normalize_for_accuracy("Café") == "caf"  # accented letters are outside 0-9a-z, as in TextZoom
    assert normalize_for_accuracy("") == ""


def test_word_correct_ignores_case_and_punctuation():
    assert word_correct("Hello!", "hello")
    assert word_correct("", "!!")
    assert not word_correct("hell0", "hello")
    assert not word_correct("hello", "hellos")


def test_normalized_edit_distance_by_hand():
    assert normalized_edit_distance("kitten", "sitting") == pytest.approx(3 / 7)
    assert normalized_edit_distance("ABC", "abc") == 0.0
    assert normalized_edit_distance("a-b", "ab") == 0.0
    assert normalized_edit_distance("", "") == 0.0
    assert normalized_edit_distance("", "abcd") == 1.0
    assert normalized_edit_distance("abcd", "abxd") == 0.25
