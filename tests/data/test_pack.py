"""tsr pack / tsr.data.pack: own image folders -> TextZoom LMDBs that tsr's dataset reads."""
import lmdb
import numpy as np
import pytest
from PIL import Image

from tsr.cli import main
from tsr.data.lmdb_dataset import TextZoomLMDB
from tsr.data.pack import labelled, pack, pair_files, read_labels, split_pairs
from tsr.data.user_images import open_rgb


def write_image(path, size, seed):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def lmdb_records(path):
    env = lmdb.open(str(path), readonly=True, lock=False)
    with env.begin() as txn:
        n = int(txn.get(b"num-samples"))
        out = [(txn.get(b"image_hr-%09d" % i), txn.get(b"image_lr-%09d" % i), txn.get(b"label-%09d" % i).decode())
               for i in range(1, n + 1)]
    env.close()
    return out


def pixels(data):
    import io
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_paired_folders_with_a_tsv_keep_the_pixels_and_labels(tmp_path):
    (tmp_path / "hr").mkdir(), (tmp_path / "lr").mkdir()
    for i, name in enumerate(["a", "b"]):
        write_image(tmp_path / "hr" / f"{name}.png", (100, 30), i)
        write_image(tmp_path / "lr" / f"{name}.jpg", (50, 15), 10 + i)
    (tmp_path / "labels.tsv").write_text("file\tlabel\na.png\tHello\nb\tworld 2\n")
    assert main(["pack", "--hr", str(tmp_path / "hr"), "--lr", str(tmp_path / "lr"), "--labels",
                 str(tmp_path / "labels.tsv"), "--out", str(tmp_path / "out")]) == 0
    records = lmdb_records(tmp_path / "out")
    assert [r[2] for r in records] == ["Hello", "world 2"]
    # stored as PNG (TextZoom's format), pixel for pixel what the files hold (the JPEG as PIL decodes it)
    assert records[0][0][:8] == b"\x89PNG\r\n\x1a\n" == records[1][1][:8]
    assert np.array_equal(pixels(records[0][0]), np.asarray(Image.open(tmp_path / "hr" / "a.png")))
    assert np.array_equal(pixels(records[1][1]), np.asarray(Image.open(tmp_path / "lr" / "b.jpg")))
    item = TextZoomLMDB(tmp_path / "out", label_filter="lower")[0]
    assert item["label"] == "hello" and tuple(item["hr"].shape) == (4, 32, 128) and tuple(item["lr"].shape) == (4, 16, 64)


def test_hr_alone_is_degraded_labels_from_names_and_a_seeded_test_split(tmp_path):
    (tmp_path / "hr").mkdir()
    for i in range(10):
        write_image(tmp_path / "hr" / f"{i:04d}_word{i}.png", (128, 32), i)
    counts = pack(tmp_path / "hr", tmp_path / "out", level="hard", test_fraction=0.3, seed=1)
    assert counts == {str(tmp_path / "out" / "train"): 7, str(tmp_path / "out" / "test" / "all"): 3}
    train = lmdb_records(tmp_path / "out" / "train")
    test = lmdb_records(tmp_path / "out" / "test" / "all")
    assert sorted(r[2] for r in train + test) == sorted(f"word{i}" for i in range(10))
    import io
    assert Image.open(io.BytesIO(train[0][1])).size == (64, 16)  # LR at half the HR size
    again = pack(tmp_path / "hr", tmp_path / "again", level="hard", test_fraction=0.3, seed=1)
    assert lmdb_records(tmp_path / "again" / "train") == train and len(again) == 2  # same seed, same bytes


def test_pack_errors_name_the_input(tmp_path, capsys):
    (tmp_path / "hr").mkdir(), (tmp_path / "lr").mkdir()
    write_image(tmp_path / "hr" / "a.png", (64, 16), 0)
    write_image(tmp_path / "lr" / "z.png", (32, 8), 0)
    assert main(["pack", "--hr", str(tmp_path / "hr"), "--lr", str(tmp_path / "lr"), "--out", str(tmp_path / "o")]) == 2
    assert "lacks a partner for 1 HR image(s), e.g. ['a.png']" in capsys.readouterr().err
    (tmp_path / "l.tsv").write_text("a.png hello\n")
    with pytest.raises(Exception, match=r"line 1: expected 'file<TAB>label'"):
        read_labels(tmp_path / "l.tsv")
    (tmp_path / "l.tsv").write_text("b.png\thello\n")
    assert main(["pack", "--hr", str(tmp_path / "hr"), "--labels", str(tmp_path / "l.tsv"), "--out", str(tmp_path / "o")]) == 2
    assert "--labels has no label for a.png" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert main(["pack", "--hr", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    assert "--hr " in capsys.readouterr().err


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


def test_out_is_kept_apart_from_the_inputs(tmp_path, capsys):
    """--overwrite once deleted whatever --out named: the --hr folder, its parent, the labels file."""
    p = tmp_path / "p"
    (p / "hr").mkdir(parents=True), (p / "lr").mkdir()
    for name in ("a_one", "b_two"):
        write_image(p / "hr" / f"{name}.png", (64, 16), 0)
        write_image(p / "lr" / f"{name}.png", (32, 8), 1)
    (p / "labels.tsv").write_text("a_one.png\tone\nb_two.png\ttwo\n")
    (tmp_path / "link").symlink_to(p / "hr")
    before = snapshot(tmp_path)
    inputs = ["--hr", str(p / "hr"), "--lr", str(p / "lr"), "--labels", str(p / "labels.tsv")]
    cases = {str(p / "lr" / ".." / "hr"): "is the --hr folder",
             str(tmp_path / "link"): "is the --hr folder",
             str(p): f"holds the --hr folder {p / 'hr'}",
             str(p / "lr" / "sub"): f"lies inside the --lr folder {p / 'lr'}",
             str(p / "labels.tsv"): "is the --labels file"}
    for out, where in cases.items():
        for extra in ([], ["--test-fraction", "0.5"]):
            assert main(["pack", *inputs, "--out", out, "--overwrite", *extra]) == 2
            err = capsys.readouterr().err
            assert err == (f"tsr pack: error: --out {out} {where}; outputs go apart from the inputs, so that writing "
                           f"or replacing them never touches your files: choose another --out\n")
    assert snapshot(tmp_path) == before


def test_overwrite_replaces_a_previous_pack_and_nothing_else(tmp_path, capsys):
    (tmp_path / "hr").mkdir()
    for i in range(4):
        write_image(tmp_path / "hr" / f"{i}_w{i}.png", (64, 16), i)
    run = ["pack", "--hr", str(tmp_path / "hr"), "--degrade", "easy"]
    assert main([*run, "--out", str(tmp_path / "one")]) == 0
    assert main([*run, "--out", str(tmp_path / "one")]) == 2
    err = capsys.readouterr().err
    assert err.endswith(f"error: {tmp_path / 'one'} already exists; pass --overwrite to replace it\n")
    assert main([*run, "--out", str(tmp_path / "one"), "--overwrite", "--seed", "1"]) == 0
    # OUT holding something of the user's: kept, with or without --overwrite
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    assert main([*run, "--out", str(tmp_path / "mine"), "--overwrite"]) == 2
    assert (f"error: {tmp_path / 'mine'} is a folder holding 1 other entry (notes.txt), not an LMDB folder "
            f"(data.mdb, lock.mdb); tsr only replaces an LMDB it could have written") in capsys.readouterr().err
    # with --test-fraction OUT is a folder of LMDBs: OUT/train and OUT/test/all are replaced, the rest kept
    split = [*run, "--out", str(tmp_path / "mine"), "--test-fraction", "0.5"]
    assert main(split) == 0 and main(split) == 2
    assert "train already exists; pass --overwrite to replace it" in capsys.readouterr().err
    old = lmdb_records(tmp_path / "mine" / "test" / "all")
    assert main([*split, "--overwrite", "--seed", "3"]) == 0
    assert lmdb_records(tmp_path / "mine" / "test" / "all") != old
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    assert sorted(p.relative_to(tmp_path / "mine").as_posix() for p in (tmp_path / "mine").rglob("*")) == [
        "notes.txt", "test", "test/all", "test/all/data.mdb", "train", "train/data.mdb"]


@pytest.mark.parametrize("twin", ["hr", "lr"])
def test_two_files_with_one_stem_are_refused_when_pairing(tmp_path, capsys, twin):
    """x_cat.png and x_cat.jpg in one folder were silently paired with one partner, the other repeated or dropped."""
    (tmp_path / "hr").mkdir(), (tmp_path / "lr").mkdir()
    for name in ("x_cat", "y_dog"):
        write_image(tmp_path / "hr" / f"{name}.png", (64, 16), 0)
        write_image(tmp_path / "lr" / f"{name}.png", (32, 8), 1)
    write_image(tmp_path / twin / "x_cat.jpg", (64, 16), 2)
    assert main(["pack", "--hr", str(tmp_path / "hr"), "--lr", str(tmp_path / "lr"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == (
        f"tsr pack: error: --{twin} holds {tmp_path / twin / 'x_cat.jpg'} and {tmp_path / twin / 'x_cat.png'}, two "
        f"files with the stem 'x_cat'; pairs are matched by file stem, so each stem must be one file: rename or "
        f"remove one\n")
    assert not (tmp_path / "o").exists()
    # without --lr nothing is paired: both files of one stem are packed, each its own record
    assert main(["pack", "--hr", str(tmp_path / twin), "--out", str(tmp_path / "o")]) == 0
    assert [r[2] for r in lmdb_records(tmp_path / "o")] == ["cat", "cat", "dog"]


def test_labels_must_be_utf8_and_may_start_with_a_byte_order_mark(tmp_path, capsys):
    (tmp_path / "hr").mkdir()
    for name in ("a", "b"):
        write_image(tmp_path / "hr" / f"{name}.png", (64, 16), 0)
    (tmp_path / "l.tsv").write_bytes("a.png\tcaf\u00e9\n".encode("utf-8") + "b.png\tna\u00efve\n".encode("latin-1"))
    assert main(["pack", "--hr", str(tmp_path / "hr"), "--labels", str(tmp_path / "l.tsv"),
                 "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == (f"tsr pack: error: --labels {tmp_path / 'l.tsv'} line 2: byte 0xef is not "
                                       f"UTF-8 text; save the file as UTF-8\n")
    assert not (tmp_path / "o").exists()
    # a UTF-8 file with a byte-order mark (spreadsheet exports): the mark is not part of the first name
    (tmp_path / "l.tsv").write_bytes(b"\xef\xbb\xbf" + "a.png\tcaf\u00e9\r\nb.png\tna\u00efve\r\n".encode("utf-8"))
    assert read_labels(tmp_path / "l.tsv") == {"a.png": "caf\u00e9", "a": "caf\u00e9", "b.png": "na\u00efve",
                                               "b": "na\u00efve"}


def test_a_test_fraction_that_empties_a_split_is_refused(tmp_path, capsys):
    """0.9 of 2 images left train empty, 0.1 left test empty: rc 0, an empty LMDB, and a tsr train command that
    then failed."""
    (tmp_path / "hr").mkdir()
    for i in range(3):
        write_image(tmp_path / "hr" / f"{i}_w{i}.png", (64, 16), i)
    (tmp_path / "one").mkdir(), (tmp_path / "two").mkdir()
    write_image(tmp_path / "one" / "0_w.png", (64, 16), 0)
    for i in range(2):
        write_image(tmp_path / "two" / f"{i}_w.png", (64, 16), i)
    cases = {("hr", "0.9"): "--test-fraction 0.9 puts 3 of the 3 images in the test split and 0 in train; each split "
                            "needs at least one: use a fraction from 0.3334 to 0.6666",
             ("hr", "0.1"): "--test-fraction 0.1 puts 0 of the 3 images in the test split and 3 in train; each split "
                            "needs at least one: use a fraction from 0.3334 to 0.6666",
             ("two", "0.9"): "--test-fraction 0.9 puts 2 of the 2 images in the test split and 0 in train; each split "
                             "needs at least one: use 0.5",
             ("one", "0.5"): "--test-fraction 0.5 needs at least 2 images (one per split), got 1: pack without it"}
    for (hr, fraction), message in cases.items():
        args = ["--hr", str(tmp_path / hr), "--out", str(tmp_path / "o"), "--test-fraction", fraction]
        assert main(["pack", *args]) == 2
        assert capsys.readouterr().err == f"tsr pack: error: {message}\n"
        assert not (tmp_path / "o").exists()
    for fraction in ("0.3334", "0.6666"):   # the ends of the range named work
        counts = pack(tmp_path / "hr", tmp_path / fraction, test_fraction=float(fraction))
        assert min(counts.values()) >= 1 and sum(counts.values()) == 3


def test_pack_is_all_or_nothing(tmp_path, capsys, monkeypatch):
    """A damaged image in the test split once left OUT/train complete and trainable with no OUT/test (and a re-run
    refused); a failed or interrupted pack now leaves no LMDB, and a pack it was replacing as it was."""
    (tmp_path / "hr").mkdir()
    for i in range(6):
        write_image(tmp_path / "hr" / f"{i}_w{i}.png", (64, 16), i)
    run = ["pack", "--hr", str(tmp_path / "hr"), "--out", str(tmp_path / "o"), "--test-fraction", "0.5", "--seed", "2"]
    pairs = labelled(pair_files(sorted((tmp_path / "hr").iterdir()), None), None)
    damaged = split_pairs(pairs, 0.5, 2)[1][-1][0]   # the last image written: the test split's last
    good = damaged.read_bytes()
    damaged.write_bytes(b"not an image")
    assert main(run) == 2
    assert f"error: --hr file {damaged} is not an image PIL can read" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    damaged.write_bytes(good)
    assert main(run) == 0   # nothing left in the way: the re-run needs no --overwrite
    before = snapshot(tmp_path / "o")
    damaged.write_bytes(b"not an image")
    assert main([*run, "--overwrite", "--seed", "3"]) == 2
    assert snapshot(tmp_path / "o") == before
    # Ctrl-C while the test split is written: the same
    damaged.write_bytes(good)
    opened = []

    def interrupted(path, flag):
        opened.append(path)
        if len(opened) == len(pairs):
            raise KeyboardInterrupt
        return open_rgb(path, flag)
    monkeypatch.setattr("tsr.data.pack.open_rgb", interrupted)
    assert main([*run, "--out", str(tmp_path / "p")]) == 130
    assert not (tmp_path / "p").exists() and len(opened) == len(pairs)
    opened.clear()
    assert main([*run, "--overwrite", "--seed", "3"]) == 130
    assert snapshot(tmp_path / "o") == before


def test_missing_labels_are_all_named_before_any_image_is_read(tmp_path, capsys, monkeypatch):
    (tmp_path / "hr").mkdir()
    for name in "abcdef":
        write_image(tmp_path / "hr" / f"{name}.png", (64, 16), 0)
    (tmp_path / "l.tsv").write_text("c.png\tcat\n")
    monkeypatch.setattr("tsr.data.pack.open_rgb", lambda *a: pytest.fail("an image was read"))
    assert main(["pack", "--hr", str(tmp_path / "hr"), "--labels", str(tmp_path / "l.tsv"),
                 "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == "tsr pack: error: --labels has no label for a.png, b.png, d.png and 2 more\n"
