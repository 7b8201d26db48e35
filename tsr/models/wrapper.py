"""The uniform wrapper: every part of the full model (sr, head, recognizer, adapter) is a `Part` holding its
network as `net`, so full-model keys are always `<part>.net.<key>` and freezing, parameter groups and
checkpoints treat all parts alike.

Keys stay identical with or without DDP / torch.compile because those wrap the *full* model from outside and
saving always goes through the unwrapped model (`tsr.checkpoint.unwrap`).
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch import nn

from tsr.models.parts import PARTS, run_order, source_of, upstream

# BatchNorm1d/2d/3d and SyncBatchNorm share this base; they are the layers whose running statistics move in
# train mode even when their parameters are frozen.
_BatchNorm = nn.modules.batchnorm._BatchNorm


def _in_scope(name: str, scopes: tuple[str, ...]) -> bool:
    """`name` is one of the submodule paths in `scopes` or lies below one of them."""
    return any(name == scope or name.startswith(scope + ".") for scope in scopes)


class Part(nn.Module):
    """One named part of the full model: `net` plus a trainable mode.

    Modes: "all" (every parameter trains), "none" (the part is a fixed function) or any scope name the
    net's class declares in `TRAINABLE_SCOPES` (e.g. CRNN's {"head_only": ("rnn.1.embedding",)}: only the
    parameters under those submodule paths train).
    """

    def __init__(self, name: str, net: nn.Module, trainable: str = "all"):
        super().__init__()
        if not name or "." in name:
            raise ValueError(f"part name must be a non-empty string without '.', got {name!r}")
        self.name = name
        self.net = net
        self.trainable = "all"
        self._frozen_modules: tuple[str, ...] = ()
        self.set_trainable(trainable)

    def forward(self, *args, **kwargs):
        return self.net(*args, **kwargs)

    def trainable_modes(self) -> tuple[str, ...]:
        return ("all", "none", *getattr(type(self.net), "TRAINABLE_SCOPES", {}))

    def set_trainable(self, mode: str) -> None:
        """Set requires_grad on every parameter of `net` from `mode`, and re-apply the train/eval rule."""
        scopes = getattr(type(self.net), "TRAINABLE_SCOPES", {})
        if mode == "all":
            keep: tuple[str, ...] | None = None          # everything trains
        elif mode == "none":
            keep = ()
        elif mode in scopes:
            keep = tuple(scopes[mode])
            names = [n for n, _ in self.net.named_parameters()]
            empty = [scope for scope in keep if not any(_in_scope(n, (scope,)) for n in names)]
            if empty:  # a typo in TRAINABLE_SCOPES would otherwise freeze the whole part without a word
                raise ValueError(f"part '{self.name}': trainable scope {mode!r} names {empty}, which hold no "
                                 f"parameters of {type(self.net).__name__}")
        else:
            raise ValueError(f"part '{self.name}': trainable mode must be one of {list(self.trainable_modes())}, "
                             f"got {mode!r}")
        for param_name, param in self.net.named_parameters():
            param.requires_grad_(keep is None or _in_scope(param_name, keep))
        # Modules that must stay in eval mode while the model trains (see `train`).
        if keep is None:
            self._frozen_modules = ()
        elif mode == "none":
            self._frozen_modules = ("",)                 # the whole net
        else:
            self._frozen_modules = tuple(name for name, module in self.net.named_modules()
                                         if isinstance(module, _BatchNorm) and not _in_scope(name, keep))
        self.trainable = mode
        self.train(self.training)

    def train(self, mode: bool = True) -> "Part":
        """Like nn.Module.train, except that frozen networks keep eval behaviour.

        A frozen BatchNorm in train mode would still normalise with batch statistics and overwrite its running
        mean/var with those of the new task's batches: the "frozen" weights would silently drift and the
        network would compute something else at test time. So BN layers outside the trainable scope stay in
        eval mode, and a part frozen entirely ("none") keeps its whole net in eval mode (a fixed function:
        no BN updates, no dropout, no train-only branches such as TSRN's STN).
        """
        super().train(mode)
        if mode:
            for name in self._frozen_modules:
                self.net.get_submodule(name).eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.net.parameters() if p.requires_grad]

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.net.parameters() if p.requires_grad or not trainable_only)

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """Optimizer groups for this part's trainable parameters, each tagged `part=<name>`.

        Matrices and conv kernels (dim >= 2) get `weight_decay`; biases and norm/PReLU weights (dim < 2) get
        none (decaying a BN scale or a bias towards 0 only hurts). Hence up to two groups per part:
        "<name>" and "<name>.no_decay"; empty groups are left out.
        """
        decay = [p for p in self.trainable_parameters() if p.dim() >= 2]
        no_decay = [p for p in self.trainable_parameters() if p.dim() < 2]
        groups = [
            {"name": self.name, "part": self.name, "params": decay, "lr": lr, "weight_decay": weight_decay},
            {"name": f"{self.name}.no_decay", "part": self.name, "params": no_decay, "lr": lr, "weight_decay": 0.0},
        ]
        return [g for g in groups if g["params"]]

    def extra_repr(self) -> str:
        return f"name={self.name!r}, trainable={self.trainable!r}"


class FullModel(nn.ModuleDict):
    """The named parts of one model, e.g. {"sr": Part, "head": Part, "recognizer": Part}; the one place that wires
    them (by the table in tsr.models.parts).

    `forward(inputs)` runs what the parts allow and returns a dict (DDP needs one forward through the wrapped
    model, so the whole task graph goes through here):
      - "features" [B, F, h, w] = sr(lr)                              (with sr)
      - "sr"       [B, C, H, W] = head(features, inputs)              (with sr + head; the head may add the
                                                                       bicubic upscaling of the LR input)
      - "sequence" [T, B, D] = adapter(features)                      (with an adapter: feature level; features
                                                                       detached while detach_adapter_input)
      - "logits"   [T, B, classes]: recognizer.decode_sequence(sequence) with an adapter (feature level),
        else recognizer(sr image) (image level), else recognizer(inputs) (recognizer alone: inputs are images).
    """

    def __init__(self, parts: dict[str, Part]):
        for key, part in parts.items():
            if not isinstance(part, Part):
                raise ValueError(f"FullModel part '{key}' must be a Part, got {type(part).__name__}")
            if part.name != key:
                raise ValueError(f"FullModel part stored under '{key}' is named '{part.name}'")
        super().__init__(parts)
        # Feature level: the adapter reads the SR features without passing gradient back to the SR network
        # (train.feature_grad_start sets it per step: a new adapter learns before its losses reach the SR net).
        self.detach_adapter_input = False

    def forward(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for name in run_order(self.keys()):
            out[PARTS[name].output] = self.run_part(name, inputs, out)
        return out

    def run_part(self, name: str, inputs: torch.Tensor, out: dict[str, torch.Tensor]) -> torch.Tensor:
        """Part `name` on what it reads inside this model: the output (in `out`, as forward builds it) of the part
        it reads, else `inputs`. Complexity measurement times each part through here."""
        source = source_of(name, self.keys())
        x = inputs if source is None else out[PARTS[source].output]
        if name == "head":
            return self["head"](x, inputs)
        if name == "adapter":
            # the cnn adapter feeds the recognizer's own CNN; the sequence adapters ignore it
            return self["adapter"](x.detach() if self.detach_adapter_input else x, self["recognizer"].net)
        if name == "recognizer" and source == "adapter":
            return self["recognizer"].net.decode_sequence(x)   # the adapter stands in for the recognizer's CNN
        return self[name](x)

    def output_of(self, name: str, inputs: torch.Tensor) -> torch.Tensor:
        """The output of part `name` on `inputs`, running only the parts it reads from (e.g. "head": the SR images
        of a joint model without running its recognizer)."""
        needed = upstream(name, self.keys())
        out: dict[str, torch.Tensor] = {}
        for part in run_order(self.keys()):
            if part in needed:
                out[PARTS[part].output] = self.run_part(part, inputs, out)
        return out[PARTS[name].output]

    def parts(self) -> Iterator[Part]:
        return iter(self.values())

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for part in self.parts() for p in part.trainable_parameters()]

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(part.num_parameters(trainable_only) for part in self.parts())

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """Every part's groups (see Part.param_groups), in part order; frozen parts contribute none."""
        return [group for part in self.parts() for group in part.param_groups(lr, weight_decay)]

    def summary(self) -> str:
        """A short table: part, network class, trainable mode, total and trainable parameter counts."""
        rows = [("part", "network", "trainable", "params", "trainable params")]
        for part in self.parts():
            rows.append((part.name, type(part.net).__name__, part.trainable, f"{part.num_parameters():,}",
                         f"{part.num_parameters(trainable_only=True):,}"))
        rows.append(("total", "", "", f"{self.num_parameters():,}", f"{self.num_parameters(True):,}"))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
                 for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(line.rstrip() for line in lines)
