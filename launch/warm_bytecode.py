"""Byte-compile, once per environment, the modules that tsr's processes import (launch/setup.sh runs this after
an install). Where PYTHONDONTWRITEBYTECODE is set, as on this project's CPU machines, Python writes no .pyc files,
so every new process (each torchrun rank, each test's subprocess) would compile torch's sources again on import:
`import torch, torch._dynamo, tsr.cli` took 12.1 s there against 4.4 s after this, on 2 cores. Only what is
imported is compiled, not all of torch: pip's byte-compilation of every installed module (which setup.sh turns off
with --no-compile) costs about a minute of set-up.
"""
import importlib
import pkgutil
import sys

# what tsr imports lazily or only in its tests, beside its own modules: torch.optim imports torch._dynamo on the
# first optimizer, torchrun is torch.distributed.run, training writes TensorBoard files, tsr export uses torch.onnx
THIRD_PARTY = ["torch", "torch._dynamo", "torch.distributed.run", "torch.onnx", "torch.utils.tensorboard",
               "tensorboard.backend.event_processing.event_accumulator", "onnx", "onnxruntime", "skimage.metrics",
               "pytest", "xdist"]


def modules() -> list[str]:
    """THIRD_PARTY and every module of tsr (but tsr.__main__, which runs the command line)."""
    import tsr

    return THIRD_PARTY + [m.name for m in pkgutil.walk_packages(tsr.__path__, "tsr.") if not m.name.endswith("__main__")]


def main(names: list[str]) -> None:
    """Import `names` (default: modules()) with bytecode writing on. The flag comes first: listing tsr's modules
    already imports tsr and torch. A module that does not import is reported, not fatal: it only starts slower."""
    sys.dont_write_bytecode = False      # this process only: the environment's setting stays for everything else
    for name in names or modules():
        try:
            importlib.import_module(name)
        except Exception as e:           # e.g. onnxruntime on a cluster without it: tsr trains without export
            print(f"[setup] not byte-compiled: {name} ({type(e).__name__}: {e})", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])                   # module names: those only (the test)
