"""The command line: Ctrl-C is one line and a non-zero status, not a KeyboardInterrupt traceback."""
import signal
import subprocess
import sys
import time

from trainer_helpers import REPO


def test_ctrl_c_is_one_line(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "tsr", "synth", "--out", str(tmp_path / "s"), "--train", "100000",
                             "--test", "1", "--workers", "1"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120   # generous: a busy 2-core CI machine starts python slowly
    while not list(tmp_path.glob(".s*")) and time.time() < deadline:   # the LMDB being written: synth is working
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and err.strip().splitlines()[-1].endswith("tsr synth: interrupted (Ctrl-C)")
    assert not (tmp_path / "s" / "train").exists()
