"""launch/setup.sh: two set-ups of one environment at once are serialised (flock), so neither uses a half-made
venv. A stand-in python records what set-up asks of it; each step takes a moment, so unserialised runs overlap.
Set-up byte-compiles what tsr imports even where PYTHONDONTWRITEBYTECODE is set (launch/warm_bytecode.py), and
takes a TSR_PYTHON as it is.
launch/torchrun.sh's helpers for the demo's runs call `train` as they should (a stand-in train records it), count
the processes, scale the steps (STEPS_X), and run a stage in the background (its log, its failure, stopped with its script)."""
import importlib.util
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

from trainer_helpers import REPO
from tsr.config import load_config

SHIM = """#!/usr/bin/env bash
echo "$$ begin $1 $2" >> "$SHIM_LOG"
case "$1 $2" in
  "-m venv") sleep 0.5; dir="${@: -1}"; mkdir -p "$dir/bin"; cp "$0" "$dir/bin/python" ;;
  "-m pip") sleep 0.5 ;;
esac
echo "$$ end" >> "$SHIM_LOG"
"""


def test_concurrent_setups_are_serialised(tmp_path):
    shim = tmp_path / "python"
    shim.write_text(SHIM)
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "log"
    env = {**_without_tsr_python(), "PYTHON": str(shim), "TSR_VENV": str(tmp_path / "venv"), "SHIM_LOG": str(log)}
    runs = [subprocess.Popen(["bash", "-c", f"source {REPO / 'launch' / 'setup.sh'}"], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(2)]
    for run in runs:
        output = run.communicate(timeout=60)[0]
        assert run.returncode == 0, output
    calls = [line.split() for line in log.read_text().splitlines()]
    # never two calls at once: every begin is followed by its own end
    assert all(a[1] == "begin" and b == [a[0], "end"] for a, b in zip(calls[::2], calls[1::2])), calls
    asked = [" ".join(call[2:]) for call in calls[::2]]
    assert asked.count("-m venv") == 1          # the second set-up found the first one's environment
    assert asked.count("-m pip") == 2           # ... and its install stamp: requirements + the editable tsr, once
    assert asked.count(f"{REPO / 'launch' / 'warm_bytecode.py'}") == 1     # byte-compiled once, after the install


def _without_tsr_python() -> dict:
    return {k: v for k, v in os.environ.items() if k != "TSR_PYTHON"}


def test_tsr_python_is_used_as_it_is_with_nothing_installed(tmp_path):
    """TSR_PYTHON (a cluster's own environment, the GPU image without internet): set-up makes no venv and installs
    nothing; it only runs its check with that interpreter, and tsr comes from the repository (PYTHONPATH)."""
    shim = tmp_path / "python"
    shim.write_text(SHIM)
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "log"
    env = {**_without_tsr_python(), "TSR_PYTHON": str(shim), "TSR_VENV": str(tmp_path / "venv"),
           "SHIM_LOG": str(log), "PYTHONPATH": "/elsewhere"}
    done = subprocess.run(["bash", "-c", f"source {REPO / 'launch' / 'setup.sh'}; echo \"$TSR_PY|$PYTHONPATH\""],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{shim}|{REPO}:/elsewhere"
    assert [line.split()[2] for line in log.read_text().splitlines()[::2]] == ["-c"]    # the check alone
    assert not (tmp_path / "venv").exists()
    # a relative TSR_PYTHON becomes absolute: the launch scripts cd to the repository after set-up
    done = subprocess.run(["bash", "-c", f"source {REPO / 'launch' / 'setup.sh'}; echo \"$TSR_PY\""], cwd=tmp_path,
                          env={**env, "TSR_PYTHON": "./python"}, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, f"{tmp_path}/./python"), done.stderr
    # an interpreter without torch (another project's): one line naming it, exit 2 (was the import's traceback)
    shim.write_text("#!/usr/bin/env bash\n"
                    "printf 'Traceback (most recent call last):\\n  File \"<string>\", line 1\\n"
                    "ModuleNotFoundError: No module named torch\\n' >&2; exit 1\n")
    done = subprocess.run(["bash", "-c", f"source {REPO / 'launch' / 'setup.sh'}; echo after"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines()[-1] == (f"[setup] {shim} cannot import torch and tsr (ModuleNotFoundError: No "
                                            "module named torch); install requirements.txt there, or unset TSR_PYTHON")
    assert "Traceback" not in done.stderr


def test_steps_x_multiplies_each_stages_resolved_steps(tmp_path):
    """STEPS_X=K: every `train` gets train.steps = K x what its config and overrides resolve to (the demo's stages
    trained longer); 1 adds nothing; anything but a whole number >= 1 stops the script before torchrun."""
    sr = REPO / "configs" / "demo" / "sr.yaml"
    steps = load_config(str(sr))["train"]["steps"]
    script = f"""
        torchrun() {{ echo "torchrun $*"; }}
        paths=(run.out_root=runs)
        train --config {sr}
        train --config {sr} train.steps=10
    """
    runs = {k: _bash(script, tmp_path, TSR_PY=sys.executable, NPROC="1", **({"STEPS_X": k} if k else {}))
            for k in ("", "1", "4")}
    assert {k: (done.returncode, done.stdout.splitlines()) for k, done in runs.items()} == {
        "": (0, [f"torchrun -m tsr.train --reuse --config {sr} run.out_root=runs",
                 f"torchrun -m tsr.train --reuse --config {sr} train.steps=10 run.out_root=runs"]),
        "1": (0, [f"torchrun -m tsr.train --reuse --config {sr} run.out_root=runs",
                  f"torchrun -m tsr.train --reuse --config {sr} train.steps=10 run.out_root=runs"]),
        "4": (0, [f"torchrun -m tsr.train --reuse --config {sr} run.out_root=runs train.steps={4 * steps}",
                  f"torchrun -m tsr.train --reuse --config {sr} train.steps=10 run.out_root=runs train.steps=40"])}
    for bad in ("0", "x", "1.5"):
        done = _bash(script, tmp_path, TSR_PY=sys.executable, NPROC="1", STEPS_X=bad)
        assert (done.returncode, done.stdout) == (2, ""), bad
        assert done.stderr.strip() == f"STEPS_X must be a whole number >= 1, got '{bad}'"
    # a config that resolves to no steps stops the script too, before torchrun (not train.steps=0)
    done = _bash("torchrun() { echo torchrun; }\ntrain --config missing.yaml", tmp_path, TSR_PY=sys.executable,
                 NPROC="1", STEPS_X="4")
    assert (done.returncode, done.stdout) == (2, "")
    assert "missing.yaml" in done.stderr and done.stderr.strip().endswith(
        "STEPS_X: no train.steps resolved for: --config missing.yaml")
    done = _bash("torchrun() { echo torchrun; }\ntrain --resume runs/sr/last.pth", tmp_path, TSR_PY=sys.executable,
                 NPROC="1", STEPS_X="4")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.strip() == "STEPS_X: a resumed run keeps its checkpoint's steps; unset STEPS_X to resume"


def test_warm_bytecode_writes_pyc_files_where_pythondontwritebytecode_is_set(tmp_path, monkeypatch):
    script = REPO / "launch" / "warm_bytecode.py"
    spec = importlib.util.spec_from_file_location("warm_bytecode", script)
    warm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(warm)
    names = warm.modules()
    assert all(importlib.util.find_spec(name) is not None for name in warm.THIRD_PARTY)    # no stale names
    assert {"torch._dynamo", "tsr.cli", "tsr.engine.trainer", "tsr.models.crnn"} <= set(names)
    assert "tsr.__main__" not in names                  # importing it would run the command line
    # one cheap module, its .pyc files redirected into tmp_path (PYTHONPYCACHEPREFIX), the setting on
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(tmp_path)}
    subprocess.run([sys.executable, str(script), "tsr.config_ranges"], env=env, check=True, timeout=60)
    assert [p.name for p in tmp_path.rglob("config_ranges.*.pyc")] == [
        f"config_ranges.{sys.implementation.cache_tag}.pyc"]
    # without names, main() lists every module with the flag already off: listing imports tsr, and with it torch
    seen = []
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.setattr(warm, "modules", lambda: seen.append(sys.dont_write_bytecode) or ["json"])
    warm.main([])
    assert seen == [False]
    without = tmp_path / "without"
    subprocess.run([sys.executable, "-c", "import tsr.config_ranges"], check=True, timeout=60,
                   env={**env, "PYTHONPYCACHEPREFIX": str(without)})
    assert not without.exists()                          # what the setting does to any other process


def _bash(script: str, tmp_path, **env) -> subprocess.CompletedProcess:
    """`script` after sourcing launch/torchrun.sh (set -euo pipefail, as the launch scripts) with a stand-in python
    (`false`: nothing may call it, unless the test names another), NPROC and TSR_GPUS only as the test sets them."""
    source = f"set -euo pipefail\nsource {REPO / 'launch' / 'torchrun.sh'}\n"
    base = {k: v for k, v in os.environ.items() if k not in ("NPROC", "TSR_GPUS", "STEPS_X")}
    return subprocess.run(["bash", "-c", source + script], cwd=tmp_path, capture_output=True, text=True, timeout=30,
                          env={**base, "TSR_PY": "false", **env})


def test_panel_judges_trains_each_judge_and_appends_its_recognizer_flag(tmp_path):
    """launch/torchrun.sh's panel_judges (ablation.sh, judges.sh): one `train` per judge config, and the caller's
    array gains a --recognizer KIND:PATH pair per judge after what it held."""
    log = tmp_path / "train.log"
    done = _bash(f"""
        train() {{ echo "$*" >> {log}; }}
        runs=runs/demo
        judges=(--recognizer crnn:a.pth)
        panel_judges judges reader1500 reader_hr1500
        printf '%s\\n' "${{judges[@]}}"
    """, tmp_path, NPROC="2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-6:] == [
        "--recognizer", "crnn:a.pth",
        "--recognizer", "convctc:runs/demo/reader1500/best_acc_model.pth",
        "--recognizer", "convctc:runs/demo/reader_hr1500/best_acc_model.pth"]
    assert log.read_text().splitlines() == ["--config configs/demo/panel/reader1500.yaml",
                                            "--config configs/demo/panel/reader_hr1500.yaml"]
    assert all((REPO / "configs" / "demo" / "panel" / f"{name}.yaml").is_file()
               for name in ("reader1500", "reader_blur1500", "reader_hr1500"))


def test_demo_joint_stages_start_from_the_merged_checkpoint_the_configs_name(tmp_path):
    """launch/torchrun.sh's demo_joint_stages (demo.sh, ablation.sh, judges.sh): both joint configs, each from
    $merged; and the file launch/demo_base.sh merges into is the one the demo's joint configs start from when run
    by hand (train.init), so `bash launch/train.sh --config configs/demo/joint_image.yaml` needs no override."""
    log = tmp_path / "train.log"
    done = _bash(f"""
        train() {{ echo "$*" >> {log}; }}
        stamp() {{ :; }}
        merged=runs/demo/sr+recognizer_blur.pth
        demo_joint_stages
    """, tmp_path, NPROC="2")
    assert done.returncode == 0, done.stderr
    assert log.read_text().splitlines() == [
        "--config configs/demo/joint_image.yaml train.init=runs/demo/sr+recognizer_blur.pth",
        "--config configs/demo/joint_feature_cnn.yaml train.init=runs/demo/sr+recognizer_blur.pth"]
    base = (REPO / "launch" / "demo_base.sh").read_text()
    merged = re.search(r'^merged=\$runs/(\S+)$', base, re.M).group(1)
    crnn = re.search(r'^crnn=\$runs/(\S+)$', base, re.M).group(1)
    assert re.search(r'--recognizer "\$crnn" --out "\$merged"', base)        # the fixed CRNN is what is merged
    for stage in ("joint_image", "joint_feature_cnn", "joint_feature", "adapter"):
        cfg = load_config(str(REPO / "configs" / "demo" / f"{stage}.yaml"))
        assert cfg["train"]["init"] == f"checkpoints/demo/{merged}", stage
    blur = load_config(str(REPO / "configs" / "demo" / "recognizer_blur.yaml"))
    assert crnn == f"{blur['run']['name']}/best_acc_model.pth"
    assert blur["train"]["rec_inputs"] == ["hr", "blurred"]


def test_the_control_sr_more_trains_on_as_many_images_as_joint_image():
    """The control of the joint stages (launch/torchrun.sh's control_sr_more) is the sr stage trained on with the
    SR loss alone for the images joint_image adds: a joint stage only pays if it beats it, not just `sr`. Both
    configs are tuned apart (the demo's 15 minutes), so their step counts must move together."""
    def images(stage):
        cfg = load_config(str(REPO / "configs" / "demo" / f"{stage}.yaml"))
        return cfg["train"]["steps"] * cfg["train"]["batch_size"] * cfg["train"]["accum_steps"], cfg
    control, control_cfg = images("sr_more")
    joint, joint_cfg = images("joint_image")
    assert control == joint
    assert control_cfg["model"]["parts"] == ["sr", "head"] and control_cfg["train"]["tasks"] == ["sr"]
    assert control_cfg["train"]["lr"] == joint_cfg["train"]["lr"]
    assert control_cfg["train"]["init"] == "checkpoints/demo/sr/best_psnr_model.pth"


def test_the_process_count_comes_from_setups_gpu_count_or_nproc(tmp_path):
    """torchrun.sh asks torch nothing when setup.sh counted the GPUs (TSR_GPUS): 2 gloo processes without a GPU,
    one per GPU with them, NPROC over both; sourced without setup.sh's count, it asks the environment's python."""
    shim = tmp_path / "python"
    shim.write_text("#!/usr/bin/env bash\necho \"$SHIM_GPUS\"\n")
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    cases = {"no GPU": {"TSR_GPUS": "0"}, "4 GPUs": {"TSR_GPUS": "4"}, "NPROC": {"TSR_GPUS": "4", "NPROC": "3"},
             "NPROC alone": {"NPROC": "3"},
             "asked, 5 GPUs": {"TSR_PY": str(shim), "SHIM_GPUS": "5"},
             "asked, none": {"TSR_PY": str(shim), "SHIM_GPUS": "0"}}
    counts = {case: _bash('echo "$nproc"', tmp_path, **env) for case, env in cases.items()}
    assert {case: (done.stdout.strip(), done.stderr) for case, done in counts.items()} == {
        "no GPU": ("2", ""), "4 GPUs": ("4", ""), "NPROC": ("3", ""), "NPROC alone": ("3", ""),
        "asked, 5 GPUs": ("5", ""), "asked, none": ("2", "")}


def test_a_background_stage_writes_its_log_and_its_failure_stops_the_script(tmp_path):
    """in_background / wait_background (demo_base.sh's reader): the job's output goes to its log, not the console;
    a failed job fails the script at the wait, naming the job, its exit status and showing its log's end."""
    done = _bash('train() { echo "trained $*"; }\n'
                 'in_background reader logs/reader.log train --config reader.yaml\n'
                 'echo foreground\nwait_background reader\necho after', tmp_path, TSR_GPUS="0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["foreground", "after"]
    assert (tmp_path / "logs" / "reader.log").read_text() == "trained --config reader.yaml\n"

    failed = _bash('train() { echo "no data at data/synth"; return 3; }\n'
                   'in_background reader reader.log train\nwait_background reader\necho after', tmp_path,
                   TSR_GPUS="0")
    assert failed.returncode == 1 and "after" not in failed.stdout
    assert failed.stderr.splitlines() == ["[bash] reader failed (exit status 3); the end of reader.log:",
                                          "no data at data/synth"]


def _ended(pid: int) -> bool:
    """The process is gone, or a zombie (stopped, waiting to be reaped by a parent that may never do it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_script_that_ends_before_the_wait_stops_its_background_stage(tmp_path):
    """A launch script that fails (set -e) while a background stage trains stops that stage and waits for it to
    end: it would otherwise go on unseen, holding the cores and its run folder's lock. The job is a function, as
    `train` is (a subshell between the script and the process it starts); like torchrun's ranks, which save
    last.pth on TERM, the stand-in takes a moment to save before it exits, and the script returns only after."""
    pid_file, saved = tmp_path / "pid", tmp_path / "saved"
    stand_in = (f'echo $$ > {pid_file}; sleep 60 & trap "kill $!; sleep 0.5; echo last.pth > {saved}; exit 143" TERM; '
                'wait')
    done = _bash(f"job() {{ bash -c '{stand_in}'; }}\n"
                 'in_background reader reader.log job\n'
                 f'while [ ! -s {pid_file} ]; do sleep 0.05; done\nfalse\necho unreachable', tmp_path, TSR_GPUS="0")
    assert done.returncode == 1 and "unreachable" not in done.stdout
    assert saved.read_text() == "last.pth\n"            # the script waited for the job to save and end
    pid = int(pid_file.read_text())
    assert _ended(pid), f"background job {pid} still runs after its script ended"


def test_a_ranks_one_line_error_is_all_torchrun_prints_and_its_status_is_kept(tmp_path):
    """A bad config stops every rank with tsr's one-line error and status 2: launch/torchrun.sh's `torchrun` prints
    that line once (not once per rank) and exits 2, without torchrun's ChildFailedError traceback and "Root Cause"
    block. A rank that dies without a word (status 1: a traceback) still gets torchrun's report, then the only one."""
    env = {"TSR_PY": sys.executable, "NPROC": "2", "PYTHONPATH": str(REPO)}
    done = _bash("torchrun -m tsr.train --config missing.yaml", tmp_path, **env)
    errors = [line for line in done.stderr.splitlines() if line.startswith("tsr train")]
    assert (done.returncode, len(errors)) == (2, 1), done.stderr
    assert re.fullmatch(r"tsr train \(rank [01]\): error: config file \S*missing\.yaml does not exist", errors[0])
    assert "Traceback" not in done.stderr and "Root Cause" not in done.stderr and "exitcode" not in done.stderr
    (tmp_path / "crash.py").write_text("raise RuntimeError('no tsr line')\n")
    done = _bash("torchrun crash.py", tmp_path, **env)
    assert done.returncode == 1 and "RuntimeError: no tsr line" in done.stderr
    assert "Root Cause" in done.stderr and "ChildFailedError" in done.stderr


TRAIN_SHIM = """#!/usr/bin/env bash
# launch/train.sh's python: torchrun and single-process training are recorded, set-up's check finds no GPU, anything
# else (`tsr config`) is the real python
case "$1 ${2:-}" in
  "-c "*) echo 0; exit 0 ;;
  */torchrun.py*) shift; echo "torchrun $*" >> "$SHIM_LOG"; exit 0 ;;
  "-m tsr.train") shift 2; echo "one process $*" >> "$SHIM_LOG"; exit 0 ;;
esac
exec "$REAL_PYTHON" "$@"
"""


def _train_sh(tmp_path, args, script="train.sh", **env):
    shim, log = tmp_path / "python", tmp_path / "log"
    shim.write_text(TRAIN_SHIM)
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    base = {k: v for k, v in os.environ.items() if k not in ("NPROC", "TSR_GPUS", "STEPS_X", "NPROC_PER_NODE")}
    done = subprocess.run(["bash", str(REPO / "launch" / script), *args], capture_output=True, text=True, timeout=120,
                          env={**base, "TSR_PYTHON": str(shim), "REAL_PYTHON": sys.executable, "SHIM_LOG": str(log),
                               **env})
    return done, (log.read_text().splitlines() if log.exists() else [])


def test_train_sh_applies_steps_x_checks_nproc_and_prints_help_once(tmp_path):
    """launch/train.sh: STEPS_X scales the steps as for the demo's stages (it was ignored); NPROC / NPROC_PER_NODE
    that are not whole numbers >= 1 stop the script in one line naming them (torchrun's traceback did not); --help
    comes from one process (each rank printed it)."""
    sr = "configs/demo/sr.yaml"
    steps = load_config(str(REPO / sr))["train"]["steps"]
    done, calls = _train_sh(tmp_path, ["--config", sr], STEPS_X="4", NPROC="1")
    assert done.returncode == 0, done.stderr
    assert calls == [f"torchrun --standalone --nproc_per_node=1 -m tsr.train --config {sr} train.steps={4 * steps}"]
    for bad in ("0", "abc"):
        (tmp_path / "log").unlink(missing_ok=True)
        done, calls = _train_sh(tmp_path, ["--config", sr], NPROC=bad)
        assert (done.returncode, calls) == (2, [])
        assert done.stderr.splitlines()[-1] == f"NPROC must be a whole number >= 1, got '{bad}'"
        done, calls = _train_sh(tmp_path, ["--config", sr], "train_multinode.sh", NPROC_PER_NODE=bad, NNODES="1",
                                NODE_RANK="0", MASTER_ADDR="localhost")
        assert (done.returncode, calls) == (2, [])
        assert done.stderr.splitlines()[-1] == f"NPROC_PER_NODE must be a whole number >= 1, got '{bad}'"
    done, calls = _train_sh(tmp_path, ["--config", sr], "train_multinode.sh", STEPS_X="4", NNODES="1",
                            NODE_RANK="0", MASTER_ADDR="localhost")
    assert (done.returncode, calls) == (2, [])
    assert done.stderr.splitlines()[-1].startswith("STEPS_X is not applied by train_multinode.sh")
    done, calls = _train_sh(tmp_path, ["--help"], NPROC="2")
    assert (done.returncode, calls) == (0, ["one process --help"]), done.stderr


def test_test_sh_runs_the_paths_it_is_given_or_the_whole_suite(tmp_path):
    """launch/test.sh: a test file, folder or test id among its arguments is what pytest runs (`tests` was always
    added, so the whole suite ran beside it); without one, the whole suite (CI's .ci/run gives no arguments). An
    option's value that names a folder holding no tests (`-k launch`: the launch/ folder) is not a path to run."""
    shim = tmp_path / "python"
    shim.write_text('#!/usr/bin/env bash\n[ "$1" = -c ] && { echo 0; exit 0; }\necho "$*"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    pytest = "-m pytest -n auto --dist loadscope"
    ran = {" ".join(args): subprocess.run(["bash", str(REPO / "launch" / "test.sh"), *args], capture_output=True,
                                          text=True, timeout=60, env={**os.environ, "TSR_PYTHON": str(shim)})
           for args in ([], ["-k", "launch"], ["tests/test_launch.py"], ["-n", "0", "tests/test_launch.py::test_x"], ["tests/engine"])}
    assert {args: (done.returncode, done.stdout.strip()) for args, done in ran.items()} == {
        "": (0, f"{pytest} tests"), "-k launch": (0, f"{pytest} tests -k launch"),
        "tests/test_launch.py": (0, f"{pytest} tests/test_launch.py"),
        "-n 0 tests/test_launch.py::test_x": (0, f"{pytest} -n 0 tests/test_launch.py::test_x"),
        "tests/engine": (0, f"{pytest} tests/engine")}


def test_setup_remakes_its_own_broken_venv_refuses_another_and_leaves_a_complete_one_unlocked(tmp_path):
    """launch/setup.sh: a venv set-up made (.tsr-made) that cannot run (killed while being made: no interpreter; its
    interpreter's link gone) is made again; one it did not make is left as it is, with one line naming TSR_VENV and
    exit 2 (every later set-up failed with "No such file or directory .../bin/python3"); a complete environment is
    used without taking the lock, whose file a read-only shared install could not hold."""
    shim = tmp_path / "python"
    shim.write_text(SHIM)
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)

    def setup(venv):
        log = tmp_path / f"{venv.name}.log"
        log.unlink(missing_ok=True)
        env = {**_without_tsr_python(), "PYTHON": str(shim), "TSR_VENV": str(venv), "SHIM_LOG": str(log)}
        done = subprocess.run(["bash", "-c", f"source {REPO / 'launch' / 'setup.sh'}"], env=env, capture_output=True,
                              text=True, timeout=60)
        return done, [" ".join(line.split()[2:]) for line in log.read_text().splitlines()[::2]] if log.exists() else []

    for name, dangling in (("killed", False), ("unlinked", True)):
        venv = tmp_path / name
        (venv / "bin").mkdir(parents=True)
        (venv / "pyvenv.cfg").write_text("home = /gone\n")
        (venv / ".tsr-made").touch()
        if dangling:
            (venv / "bin" / "python").symlink_to("/gone/python3")
        done, asked = setup(venv)
        assert done.returncode == 0, done.stderr
        assert asked.count("-m venv") == 1 and (venv / ".tsr-setup").is_file() and (venv / "bin" / "python").is_file()
    foreign = tmp_path / "foreign"
    (foreign / "bin").mkdir(parents=True)
    (foreign / "pyvenv.cfg").write_text("home = /gone\n")
    (foreign / "bin" / "python").symlink_to("/gone/python3")
    done, asked = setup(foreign)
    assert (done.returncode, asked, done.stdout) == (2, [], "")
    assert done.stderr.strip().startswith(f"[setup] TSR_VENV={foreign} is a virtual environment that cannot run")
    assert len(done.stderr.strip().splitlines()) == 1 and (foreign / "bin" / "python").is_symlink()
    # complete: made above; its lock file removed, set-up must not make it again
    complete = tmp_path / "killed"
    (complete / ".tsr-setup.lock").unlink()
    done, asked = setup(complete)
    assert done.returncode == 0 and len(asked) == 1 and asked[0].startswith("-c import sys, torch, tsr"), asked  # the check alone
    assert not (complete / ".tsr-setup.lock").exists()


def test_demo_data_refuses_folders_it_cannot_write_and_a_bad_steps_x_before_any_work(tmp_path):
    """demo_data (demo.sh, ablation.sh, judges.sh, efficiency.sh): an unwritable TSR_DEMO_DATA / TSR_DEMO_RUNS, or
    STEPS_X that is no whole number, is one line and exit 2 before synth starts (STEPS_X=abc was refused only
    after synthesis, an unwritable output folder minutes later, at its first write)."""
    (tmp_path / "a_file").write_text("")
    synth = 'stamp() { echo "stamp $*"; }\ndemo_data\necho after'
    cases = {"TSR_DEMO_DATA": {"TSR_DEMO_DATA": "a_file/synth"}, "TSR_DEMO_RUNS": {"TSR_DEMO_RUNS": "a_file/runs"},
             "STEPS_X": {"STEPS_X": "abc"}}
    done = {case: _bash(synth, tmp_path, TSR_GPUS="0", **env) for case, env in cases.items()}
    assert {case: (d.returncode, d.stdout, d.stderr) for case, d in done.items()} == {
        "TSR_DEMO_DATA": (2, "", "TSR_DEMO_DATA=a_file/synth: cannot write there (a_file is not a writable folder)\n"),
        "TSR_DEMO_RUNS": (2, "", "TSR_DEMO_RUNS=a_file/runs: cannot write there (a_file is not a writable folder)\n"),
        "STEPS_X": (2, "", "STEPS_X must be a whole number >= 1, got 'abc'\n")}
    fine = _bash(synth, tmp_path, TSR_GPUS="0", TSR_DEMO_DATA="new/data", TSR_DEMO_RUNS=str(tmp_path))
    assert fine.stdout.startswith("stamp synthesising TextZoom-format data in new/data") and fine.returncode != 0
    assert not list(tmp_path.glob(".tsr-write-check.*"))      # the probe is removed
