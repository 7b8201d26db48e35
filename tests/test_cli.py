"""The command line: Ctrl-C is one line and a non-zero status, not a KeyboardInterrupt traceback."""
import signal
import subprocess
import sys
import time

from trainer_helpers import REPO


def _default_sigint():
    # a shell that starts a job in the background (CI launched with `&`) ignores SIGINT in it, and Python keeps an
    # ignored SIGINT ignored: restore the default so that the child turns Ctrl-C into KeyboardInterrupt as in a
    # terminal
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_is_one_line(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "tsr", "synth", "--out", str(tmp_path / "s"), "--train", "100000",
                             "--test", "1", "--workers", "1"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    deadline = time.time() + 120   # generous: a busy 2-core CI machine starts python slowly
    # the train LMDB being written (lmdb_writer's S/.train.*.writing): synth is working
    while not list((tmp_path / "s").glob(".train.*")) and time.time() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "tsr synth ended before it was interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and err.strip().splitlines()[-1].endswith("tsr synth: interrupted (Ctrl-C)")
    assert not (tmp_path / "s" / "train").exists()


def test_a_message_said_once_per_launch_may_hold_any_file_name(tmp_path, monkeypatch):
    """Under launch/torchrun.py (TSR_SAID) each message is printed by the first rank only; a Latin-1 file name
    (a str with surrogates) ended in a UnicodeEncodeError traceback inside the error handler."""
    from tsr.cli import _first_to_say

    monkeypatch.setenv("TSR_SAID", str(tmp_path))
    message = "config file caf\udce9.yaml does not exist"
    assert [_first_to_say(message), _first_to_say(message), _first_to_say("another")] == [True, False, True]
