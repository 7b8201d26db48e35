"""tsr.engine.run_folder.file_label: a checkpoint's name in a table label is its file stem, or its run folder's name
for the file names every run folder has (so that checkpoints/demo/a/last.pth and .../b/last.pth are two rows)."""
from tsr.engine.run_folder import BEST_ACC, BEST_PSNR, LAST, file_label


def test_generic_file_names_are_labelled_by_their_run_folder():
    assert [file_label(f"checkpoints/demo/reader_blur/{name}") for name in (LAST, BEST_ACC, BEST_PSNR)] == \
        ["reader_blur"] * 3


def test_other_file_names_keep_their_stem():
    assert file_label("weights/crnn_a.pth") == "crnn_a"
    assert file_label("checkpoints/demo/sr+recognizer_blur.pth") == "sr+recognizer_blur"
    assert file_label("last.pth") == "last"         # no folder to name it by
