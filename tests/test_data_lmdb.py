import io
import logging
import pickle

import lmdb
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from tsr.data.lmdb_dataset import TextZoomLMDB, build_train_dataset, collate, load_test_splits
from tsr.data.lmdb_writer import write_textzoom_lmdb
from tsr.data.transforms import text_mask
from tsr.errors import DataError


def png(width, height, value=200, dark_box=None):
    array = np.full((height, width, 3), value, np.uint8)
    if dark_box:
        x0, y0, x1, y1 = dark_box
        array[y0:y1, x0:x1] = 10
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def pair(label="abc"):
    return png(128, 32, dark_box=(10, 5, 40, 20)), png(64, 16), label


def test_reads_textzoom_layout_and_filters_labels(tmp_path, caplog):
    records = [pair("Hello!"), pair("!!"), pair("x" * 30), pair("ok")]
    write_textzoom_lmdb(tmp_path / "db", records)
    with caplog.at_level(logging.INFO, logger="tsr.data"):
        ds = TextZoomLMDB(tmp_path / "db", label_filter="lower", max_len=25)
    assert len(ds) == 2 and ds.labels == ["hello", "ok"] and ds.indices == [1, 4]   # 1-indexed
    assert ds.dropped == {"empty": 1, "too_long": 1, "missing": 0}
    assert "kept 2 of 4 records" in caplog.text and "1 longer than 25" in caplog.text
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
                                          (hr, lr, "fine")])
    ds = TextZoomLMDB(tmp_path / "db")
    assert ds[1] is None and ds[2] is None
    batch = collate([ds[i] for i in range(4)])
    assert batch["corrupt"] == 2 and batch["label"] == ["good", "fine"] and batch["lr"].shape[0] == 2
    assert batch["index"].tolist() == [1, 4]
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
    write_textzoom_lmdb(tmp_path / "test" / "easy", [pair()])
    with pytest.raises(DataError, match=r"no split folder medium, hard \(found: easy\)"):
        load_test_splits(tmp_path / "test")
    with pytest.raises(DataError, match="already exists"):
        write_textzoom_lmdb(tmp_path / "test" / "easy", [pair()])
    with pytest.raises(DataError, match="train_roots is empty"):
        build_train_dataset([])


def test_writer_leaves_nothing_behind_on_failure(tmp_path):
    def records():
        yield pair()
        raise RuntimeError("generator died")
    with pytest.raises(RuntimeError):
        write_textzoom_lmdb(tmp_path / "db", records())
    assert list(tmp_path.iterdir()) == []


def test_concat_pickle_and_worker_processes(tmp_path):
    write_textzoom_lmdb(tmp_path / "train1", [pair("a")] * 5)
    write_textzoom_lmdb(tmp_path / "train2", [pair("b")] * 3)
    ds = build_train_dataset([tmp_path / "train1", tmp_path / "train2"])
    assert len(ds) == 8
    _ = ds[0]  # opens an env in this process; pickling must not carry it
    clone = pickle.loads(pickle.dumps(ds.datasets[0]))
    assert clone[0]["label"] == "a"
    labels = [l for b in DataLoader(ds, batch_size=3, num_workers=2, collate_fn=collate) for l in b["label"]]
    assert labels == ["a"] * 5 + ["b"] * 3
