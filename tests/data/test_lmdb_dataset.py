import io
import logging
import os
import pickle

import lmdb
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from tsr.data import lmdb_dataset
from tsr.data.lmdb_dataset import TextZoomLMDB, build_train_dataset, collate, load_test_splits
from tsr.data.lmdb_writer import LMDBSet, write_textzoom_lmdb
from tsr.data.transforms import load_pair_uint8, text_mask, to_float
from tsr.errors import DataError

from lmdb_records import pair, png


def test_reads_textzoom_layout_and_filters_labels(tmp_path, caplog):
    records = [pair("Hello!"), pair("!!"), pair("x" * 30), pair("ok")]
    write_textzoom_lmdb(tmp_path / "db", records)
    with caplog.at_level(logging.INFO, logger="tsr.data"):
        ds = TextZoomLMDB(tmp_path / "db", label_filter="lower", max_len=25)
    assert len(ds) == 2 and ds.labels == ["hello", "ok"] and ds.indices == [1, 4]   # 1-indexed
    assert ds.dropped == {"empty": 1, "too_long": 1}
    [line] = [r.getMessage() for r in caplog.records if r.name == "tsr.data"]
    assert str(tmp_path / "db") in line and "kept 2 of 4 records" in line and "1 longer than data.max_len 25" in line
    assert "1 label(s) empty once characters outside the 'lower' charset are removed" in line
    # the env opened to read labels is closed again: nothing is open before DataLoader workers fork
    assert os.path.realpath(tmp_path / "db") not in lmdb_dataset._ENVS
    item = ds[0]
    assert item["hr"].shape == (4, 32, 128) and item["lr"].shape == (4, 16, 64)
    assert item["hr"].dtype == torch.float32 and 0 <= item["hr"].min() and item["hr"].max() <= 1
    assert item["index"] == 1 and item["split"] == "db"
    ds_all = TextZoomLMDB(tmp_path / "db", label_filter="all", max_len=25, mask=False)
    assert ds_all.labels == ["Hello!", "!!", "ok"] and ds_all[0]["hr"].shape == (3, 32, 128)


def test_mask_channel_marks_dark_pixels():
    image = Image.fromarray(np.pad(np.full((4, 4, 3), 20, np.uint8), ((2, 2), (2, 2), (0, 0)), constant_values=230))
    mask = text_mask(image)
    assert mask.sum() == 16 and mask[2:6, 2:6].all() and mask[0].sum() == 0
    # through the dataset's decoding: RGB scaled to [0,1], 4th channel 1 exactly on the dark box (already at 128x32)
    hr, lr = map(to_float, load_pair_uint8(png(128, 32, value=200, dark_box=(10, 5, 40, 20)), png(32, 8, value=90)))
    assert hr.shape == (4, 32, 128) and hr[3, 5:20, 10:40].eq(1).all() and hr[3].sum() == 30 * 15
    assert hr[0, 0, 0].item() == pytest.approx(200 / 255) and hr[0, 6, 11].item() == pytest.approx(10 / 255)
    assert lr.shape == (4, 16, 64) and lr[3].eq(1).all()   # a flat image: every pixel <= its mean
    hr3, _ = load_pair_uint8(png(128, 32), png(64, 16), mask=False)
    assert hr3.shape == (3, 32, 128)


def test_uppercase_hr_key_and_resizing_of_other_sizes(tmp_path):
    env = lmdb.open(str(tmp_path / "tz"), map_size=1 << 24)
    with env.begin(write=True) as txn:
        txn.put(b"num-samples", b"1")
        txn.put(b"label-000000001", b"word")
        txn.put(b"image_HR-000000001", png(90, 40))   # TextZoom's crop script key and a raw crop size
        txn.put(b"image_lr-000000001", png(45, 20))
    env.close()
    item = TextZoomLMDB(tmp_path / "tz")[0]
    assert item["hr"].shape == (4, 32, 128) and item["lr"].shape == (4, 16, 64)


def test_corrupt_records_are_counted_never_replaced(tmp_path):
    hr, lr, _ = pair()
    write_textzoom_lmdb(tmp_path / "db", [(hr, lr, "good"), (b"not an image", lr, "bad"), (hr, None, "nolr"),
                                          (hr, lr, "fine"), (hr[:60], lr, "truncated"), (hr, lr, "nolabel")])
    with lmdb.open(str(tmp_path / "db"), map_size=1 << 24, lock=False) as env, env.begin(write=True) as txn:
        txn.delete(b"label-000000006")
    ds = TextZoomLMDB(tmp_path / "db")
    assert len(ds) == 6 and ds.dropped == {"empty": 0, "too_long": 0}
    assert [ds[i] is None for i in range(6)] == [False, True, True, False, True, True]
    batch = collate([ds[i] for i in range(6)])
    assert batch["corrupt"] == 4 and batch["label"] == ["good", "fine"] and batch["lr"].shape == (2, 4, 16, 64)
    assert batch["index"].tolist() == [1, 4] and batch["split"] == ["db", "db"]
    empty = collate([None, None])
    assert empty["corrupt"] == 2 and empty["lr"].shape[0] == 0 and empty["label"] == []


def test_clear_errors_for_bad_paths(tmp_path):
    with pytest.raises(DataError, match=r"data path .*nope does not exist"):
        TextZoomLMDB(tmp_path / "nope")
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataError, match=r"data path .*plain is not an LMDB"):
        TextZoomLMDB(tmp_path / "plain")
    env = lmdb.open(str(tmp_path / "nokey"), map_size=1 << 20)
    env.close()
    with pytest.raises(DataError, match="without the key 'num-samples'"):
        TextZoomLMDB(tmp_path / "nokey")
    with lmdb.open(str(tmp_path / "nokey"), map_size=1 << 20) as env, env.begin(write=True) as txn:
        txn.put(b"num-samples", b"twelve")
    with pytest.raises(DataError, match=r"'num-samples' is b'twelve' \(expected a non-negative integer\)"):
        TextZoomLMDB(tmp_path / "nokey")
    with pytest.raises(ValueError, match="label filter must be one of"):
        TextZoomLMDB(tmp_path / "nokey", label_filter="upper")
    write_textzoom_lmdb(tmp_path / "test" / "easy", [pair()])
    with pytest.raises(DataError, match=r"no split folder medium, hard \(found: easy\)"):
        load_test_splits(tmp_path / "test")
    with pytest.raises(DataError, match="already exists"):
        write_textzoom_lmdb(tmp_path / "test" / "easy", [pair()])
    with pytest.raises(DataError, match="train_roots is empty"):
        build_train_dataset([])


def test_writer_is_atomic_and_overwrites_only_when_asked(tmp_path):
    def records():
        yield pair()
        raise RuntimeError("generator died")
    with pytest.raises(RuntimeError):
        write_textzoom_lmdb(tmp_path / "db", records())
    assert list(tmp_path.iterdir()) == []
    assert write_textzoom_lmdb(tmp_path / "db", [pair("one")]) == 1
    with pytest.raises(RuntimeError):   # a failed overwrite keeps the old LMDB intact
        write_textzoom_lmdb(tmp_path / "db", records(), overwrite=True)
    assert TextZoomLMDB(tmp_path / "db").labels == ["one"]
    assert write_textzoom_lmdb(tmp_path / "db", [pair("two"), pair("three")], overwrite=True) == 2
    assert TextZoomLMDB(tmp_path / "db").labels == ["two", "three"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db"]   # no temp folders left
    assert sorted(p.name for p in (tmp_path / "db").iterdir()) == ["data.mdb"]
    with pytest.raises(ValueError, match="record 1: label must be str"):
        write_textzoom_lmdb(tmp_path / "db2", [(b"", b"", None)])


def test_overwrite_replaces_only_an_lmdb_folder(tmp_path):
    """overwrite=True once deleted whatever was at the path (tsr pack --out my_images/ --overwrite lost the
    images); now only a folder of LMDB files (or an empty one) is replaced, anything else is a one-line error."""
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"mine")
    (tmp_path / "labels.tsv").write_text("a.png\tcat\n")
    write_textzoom_lmdb(tmp_path / "db", [pair("old")])
    (tmp_path / "link").symlink_to(tmp_path / "db")
    cases = {"images": r"images is a folder holding 1 other entry \(a.png\), not an LMDB folder",
             "labels.tsv": r"labels.tsv is a file, not an LMDB folder",
             "link": r"link is a symbolic link \(to .*db\), not an LMDB folder"}
    for name, message in cases.items():
        for overwrite in (True, False):
            with pytest.raises(DataError, match=message + r" \(data.mdb, lock.mdb\); tsr only replaces an LMDB it "
                                                          r"could have written: choose another path"):
                write_textzoom_lmdb(tmp_path / name, [pair("new")], overwrite=overwrite)
    assert (tmp_path / "images" / "a.png").read_bytes() == b"mine"
    assert (tmp_path / "labels.tsv").read_text() == "a.png\tcat\n"
    assert (tmp_path / "link").is_symlink() and TextZoomLMDB(tmp_path / "link").labels == ["old"]
    # the hint names the caller's own option
    with pytest.raises(DataError, match=r"db already exists; pass overwrite=True to replace it"):
        write_textzoom_lmdb(tmp_path / "db", [pair("new")])
    with pytest.raises(DataError, match=r"db already exists; pass --overwrite to replace it"):
        write_textzoom_lmdb(tmp_path / "db", [pair("new")], option="--overwrite")
    # an LMDB folder, with the lock.mdb another program's open leaves, and an empty folder are replaced
    with lmdb.open(str(tmp_path / "db")) as env:
        env.stat()
    assert sorted(p.name for p in (tmp_path / "db").iterdir()) == ["data.mdb", "lock.mdb"]
    assert write_textzoom_lmdb(tmp_path / "db", [pair("new")], overwrite=True) == 1
    assert TextZoomLMDB(tmp_path / "db").labels == ["new"]
    (tmp_path / "empty").mkdir()
    assert write_textzoom_lmdb(tmp_path / "empty", [pair("e")], overwrite=True) == 1


def test_an_lmdb_set_is_written_all_or_nothing(tmp_path):
    """A set that fails part-way (a damaged image in the last split, Ctrl-C) leaves none of its LMDBs, nor the
    folders it made for them; an earlier LMDB it was replacing is kept as it was."""
    write_textzoom_lmdb(tmp_path / "out" / "train", [pair("old")])
    with pytest.raises(KeyboardInterrupt):
        with LMDBSet(overwrite=True) as lmdbs:
            assert lmdbs.write(tmp_path / "out" / "train", [pair("a"), pair("b")]) == 2
            lmdbs.write(tmp_path / "out" / "test" / "all", [pair("c")])
            raise KeyboardInterrupt
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "out", "out/train", "out/train/data.mdb"]
    assert TextZoomLMDB(tmp_path / "out" / "train").labels == ["old"]
    with LMDBSet(overwrite=True) as lmdbs:
        lmdbs.write(tmp_path / "out" / "train", [pair("a"), pair("b")])
        lmdbs.write(tmp_path / "out" / "test" / "all", [pair("c")])
        assert not (tmp_path / "out" / "test" / "all").exists()   # moved into place only at the end
    assert TextZoomLMDB(tmp_path / "out" / "train").labels == ["a", "b"]
    assert TextZoomLMDB(tmp_path / "out" / "test" / "all").labels == ["c"]


def test_concat_pickle_and_worker_processes(tmp_path):
    write_textzoom_lmdb(tmp_path / "train1", [pair("a")] * 5)
    write_textzoom_lmdb(tmp_path / "train2", [pair("b")] * 3)
    ds = build_train_dataset([tmp_path / "train1", tmp_path / "train2"])
    assert len(ds) == 8 and [d.split for d in ds.datasets] == ["train1", "train2"]
    labels = [l for b in DataLoader(ds, batch_size=3, num_workers=2, collate_fn=collate) for l in b["label"]]
    assert labels == ["a"] * 5 + ["b"] * 3
    _ = ds[0]  # opens an env in this process; pickling must not carry it, and forked workers replace it
    clone = pickle.loads(pickle.dumps(ds.datasets[0]))
    assert clone[0]["label"] == "a" and clone[0]["hr"].shape == (4, 32, 128)
    again = TextZoomLMDB(tmp_path / "train1")   # a second dataset on an open path (py-lmdb opens a path once)
    assert len(again) == 5 and again[4]["index"] == 5
    batches = list(DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate))
    assert [b["lr"].shape[0] for b in batches] == [4, 4] and sum(b["corrupt"] for b in batches) == 0


@pytest.mark.parametrize("workers", [0, 2])
def test_decoded_cache_gives_the_same_items_and_the_same_unreadable_records(tmp_path, workers):
    rng = np.random.default_rng(0)

    def noisy_png(width, height):                  # other sizes than the model's: the resize is cached too
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(buffer, format="PNG")
        return buffer.getvalue()

    records = [(noisy_png(100 + i, 30), noisy_png(50, 12 + i), f"w{i}") for i in range(5)]
    records[2] = (b"not an image", records[2][1], "bad")
    write_textzoom_lmdb(tmp_path / "db", records)
    plain = TextZoomLMDB(tmp_path / "db")
    cached = TextZoomLMDB(tmp_path / "db", cache=True, cache_workers=workers)
    assert cached.cached.readable.tolist() == [True, True, False, True, True]
    assert cached.cached.nbytes == 5 * (4 * 32 * 128 + 4 * 16 * 64) + 5
    for i in range(5):
        if i == 2:
            assert plain[i] is None and cached[i] is None
            continue
        for key in ("hr", "lr"):
            assert cached[i][key].dtype == torch.float32 and torch.equal(cached[i][key], plain[i][key])
        assert cached[i]["label"] == plain[i]["label"] == f"w{i}" and cached[i]["index"] == i + 1
    # the cache survives pickling (spawned workers) and serves forked workers
    assert torch.equal(pickle.loads(pickle.dumps(cached))[4]["hr"], plain[4]["hr"])
    batches = list(DataLoader(cached, batch_size=5, num_workers=2, collate_fn=collate))
    assert batches[0]["corrupt"] == 1 and batches[0]["label"] == ["w0", "w1", "w3", "w4"]


def test_cache_build_with_workers_under_a_low_open_file_limit(tmp_path):
    # each tensor a worker sends costs file descriptors: batches of single pairs exhausted a 1,024 limit and hung
    import subprocess
    import sys
    write_textzoom_lmdb(tmp_path / "db", [pair(f"w{i}") for i in range(600)])
    script = ("import resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256)); "
              "from tsr.data.lmdb_dataset import TextZoomLMDB; "
              "ds = TextZoomLMDB(sys.argv[1], cache=True, cache_workers=2); "
              "print(int(ds.cached.readable.sum()), ds[599]['label'])")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "db")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["600", "w599"]
