"""Config -> FullModel. A small registry per part kind maps `model.<part>.type` to a constructor; the other
keys of that config section become its keyword arguments, plus the sizes derived from `data.*` (BasicSR's
pattern, with explicit registrations below instead of scanning files)."""
from __future__ import annotations

from functools import partial
from typing import Callable

from torch import nn

from tsr.config import ConfigError
from tsr.charset import CTCCodec, alphabet_for
from tsr.images import image_channels
from tsr.losses.weighting import build_weighting, is_learned
from tsr.models import adapters, quantization
from tsr.models.abpn import ABPNBackbone
from tsr.models.aster import Aster
from tsr.models.convctc import ConvCTC
from tsr.models.crnn import CRNN
from tsr.models.heads import PixelShuffleHead, check_scale
from tsr.models.imdn import IMDNBackbone
from tsr.models.imdn_rtc import IMDNRTCBackbone
from tsr.models.moran import Moran
from tsr.models.parts import PART_NAMES, PARTS, runs
from tsr.models.rfdn import RFDNBackbone
from tsr.models.shuffle_head import ShuffleHead
from tsr.models.tsrn import TSRNBackbone
from tsr.models.wrapper import FullModel, Part

# Section keys that configure the wrapper (or the registry), not the network's constructor.
_NOT_KWARGS = ("type", "trainable")


class Registry:
    """type name -> constructor taking plain keyword arguments, for the config key `key`."""

    def __init__(self, key: str):
        self.key = key
        self._constructors: dict[str, Callable[..., nn.Module]] = {}

    def register(self, name: str, constructor: Callable[..., nn.Module]) -> None:
        if name in self._constructors:
            raise ValueError(f"{self.key}: type {name!r} is registered twice")
        self._constructors[name] = constructor

    def names(self) -> list[str]:
        return list(self._constructors)

    def trainable_modes(self, name: str) -> tuple[str, ...]:
        """Modes of `model.<part>.trainable` for type `name` (see Part): all, none and the class's scopes."""
        return ("all", "none", *getattr(self._constructors.get(name), "TRAINABLE_SCOPES", {}))

    def build(self, name: str, **kwargs) -> nn.Module:
        if name not in self._constructors:
            raise ConfigError(f"config key '{self.key}' is {name!r}; valid types: {self.names()}")
        try:
            return self._constructors[name](**kwargs)
        except ValueError as e:    # a constructor's check of its arguments, which come from the config
            raise ConfigError(f"{self.key}={name!r}: {e}") from None


SR = Registry("model.sr.type")
SR.register("tsrn", TSRNBackbone)
SR.register("imdn", IMDNBackbone)
SR.register("imdn_rtc", IMDNRTCBackbone)
SR.register("rfdn", RFDNBackbone)
SR.register("abpn", ABPNBackbone)
HEADS = Registry("model.head.type")
HEADS.register("pixelshuffle", PixelShuffleHead)
HEADS.register("shuffle", ShuffleHead)
HEADS.register("anchor", partial(ShuffleHead, anchor=True))
RECOGNIZERS = Registry("model.recognizer.type")
RECOGNIZERS.register("crnn", CRNN)
RECOGNIZERS.register("aster", lambda **crnn_keys: Aster())   # one public architecture: CRNN's size keys do not apply
RECOGNIZERS.register("moran", lambda **crnn_keys: Moran())
RECOGNIZERS.register("convctc", ConvCTC)
ADAPTERS = Registry("model.adapter.type")
for _kind in adapters.SEQUENCE_NETS:
    ADAPTERS.register(_kind, partial(adapters.build_adapter, _kind))
ADAPTERS.register("cnn", adapters.CNNAdapter)


_REGISTRIES = {"sr": SR, "head": HEADS, "recognizer": RECOGNIZERS, "adapter": ADAPTERS}


def model_choices(cfg: dict) -> dict[str, tuple]:
    """The valid values of model.<part>.type (the registries' names; the adapter's may be null) and of
    model.<part>.trainable for the type `cfg` names; the config check asks this."""
    choices: dict[str, tuple] = {}
    for part, registry in _REGISTRIES.items():
        optional = (None,) if part == "adapter" else ()
        choices[registry.key] = (*optional, *registry.names())
        section = cfg.get("model", {}).get(part, {})
        choices[f"model.{part}.trainable"] = registry.trainable_modes(section.get("type"))
    choices["model.quantization"] = quantization.MODES
    choices["model.int8_engine"] = quantization.ENGINES
    return choices


def build_model(cfg: dict) -> FullModel:
    """Resolved config -> FullModel with the parts in `model.parts` (in the order sr, head, recognizer, adapter).

    Derived from `data`: sr input / head output channels (4 with data.mask, else 3), LR size, the scale check
    of head stages against data.lr_* -> data.hr_*, and the recognizer's classes from data.label_filter.
    `model.<part>.trainable` sets each part's trainable mode. With a learned train.weighting (uncertainty) the model also
    has a `weighting` part holding one learned log-variance per task of `train.tasks` (it is trained, synchronised
    and saved like any other part). `model.quantization` (qat | int8) then turns sr and head into fake-quantised or
    int8 modules (tsr.models.quantization).
    """
    data, model = cfg["data"], cfg["model"]
    names = _checked_parts(model)
    channels = image_channels(data["mask"])
    lr_size = (data["lr_height"], data["lr_width"])
    hr_size = (data["hr_height"], data["hr_width"])
    parts: dict[str, Part] = {}
    if "sr" in names:
        parts["sr"] = Part("sr", SR.build(model["sr"]["type"], **_kwargs(model["sr"]),
                                          in_channels=channels, lr_size=lr_size),
                           trainable=model["sr"]["trainable"])
    if "head" in names:
        check_scale(model["head"]["stages"], lr_size, hr_size)
        parts["head"] = Part("head", HEADS.build(model["head"]["type"], **_kwargs(model["head"]),
                                                 channels=model["sr"]["channels"], out_channels=channels),
                             trainable=model["head"]["trainable"])
    if "recognizer" in names:
        num_classes = CTCCodec(alphabet_for(data["label_filter"])).num_classes
        recognizer = RECOGNIZERS.build(model["recognizer"]["type"], **_kwargs(model["recognizer"]),
                                       num_classes=num_classes)
        if getattr(recognizer, "EVALUATION_ONLY", False) and (names != ["recognizer"] or "rec" in cfg["train"]["tasks"]):
            raise ConfigError(f"config key 'model.recognizer.type' is {model['recognizer']['type']!r}: an evaluation-only "
                              f"judge, not a trainable part (model.parts must be [recognizer], train.tasks without rec)")
        parts["recognizer"] = Part("recognizer", recognizer, trainable=model["recognizer"]["trainable"])
    if "adapter" in names:
        parts["adapter"] = Part("adapter", _adapter(model, parts["recognizer"].net, lr_size),
                                trainable=model["adapter"]["trainable"])
    train = cfg["train"]
    if is_learned(train["weighting"]):
        parts["weighting"] = Part("weighting", build_weighting(train["weighting"], train["tasks"], train["task_weights"]))
    return quantization.prepare(FullModel(parts), model["quantization"], model["int8_engine"])


def _adapter(model: dict, recognizer: nn.Module, lr_size: tuple[int, int]) -> nn.Module:
    """The adapter stands in for the recognizer's CNN: a sequence kind makes that CNN's output sequence, the cnn
    kind the map after its first pooling layer (then read by the rest of that CNN)."""
    kind, kwargs = model["adapter"]["type"], _kwargs(model["adapter"])
    if kind == "cnn":
        if not hasattr(recognizer, "encode_after"):
            raise ConfigError(f"config key 'model.adapter.type' is 'cnn', which feeds the recognizer's own CNN, but "
                              f"model.recognizer.type {model['recognizer']['type']!r} has none to feed; use crnn")
        return ADAPTERS.build(kind, in_channels=model["sr"]["channels"], hidden=kwargs["hidden"],
                              map_shape=recognizer.map_shape(adapters.CNN_ADAPTER_LAYER),
                              layer=adapters.CNN_ADAPTER_LAYER)
    return ADAPTERS.build(kind, **kwargs, in_channels=model["sr"]["channels"], feature_height=lr_size[0],
                          seq_len=recognizer.sequence_length, out_dim=recognizer.sequence_dim)


def _kwargs(section: dict) -> dict:
    return {key: value for key, value in section.items() if key not in _NOT_KWARGS}


def _checked_parts(model: dict) -> list[str]:
    names = list(model["parts"])
    unknown = [n for n in names if n not in PART_NAMES]
    if unknown or not names:
        raise ConfigError(f"config key 'model.parts' is {names!r}; expected a non-empty list of {list(PART_NAMES)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"config key 'model.parts' names a part twice: {names!r}")
    if "recognizer" in names and not runs("recognizer", names):
        raise ConfigError(f"config key 'model.parts' is {names!r}: the recognizer reads either the SR image (add "
                          "'head': image level) or the SR features (add 'adapter': feature level)")
    for part in [p for p in PART_NAMES if p in names]:
        absent = [r for r in PARTS[part].needs if r not in names]
        if absent:
            raise ConfigError(f"config key 'model.parts' has '{part}' without {absent}: the {part} reads their outputs")
    has_adapter, adapter_type = "adapter" in names, model["adapter"]["type"]
    if has_adapter and adapter_type is None:
        raise ConfigError("config key 'model.parts' has 'adapter' but model.adapter.type is null; "
                          f"set model.adapter.type to one of {ADAPTERS.names()}")
    if adapter_type is not None and not has_adapter:
        raise ConfigError(f"config key 'model.adapter.type' is {adapter_type!r} but 'adapter' is not in model.parts "
                          f"{names!r}; add it, or set model.adapter.type=null for an image-level model")
    return [n for n in PART_NAMES if n in names]
