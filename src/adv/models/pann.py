"""PANN backbones (Kong et al. 2020): Cnn14, Cnn10, Cnn6 and MobileNetV1.

Module and parameter names follow the official AudioSet checkpoints
(Zenodo record 3987831) exactly, so ``model.load_state_dict(ckpt['model'])``
works with ``strict=True``.  See :mod:`adv.models.checkpoints` for loading.

Every model maps a waveform ``[B, samples]`` (32 kHz by default) to a dict::

    {"clipwise_output": sigmoid(logits) [B, classes_num],
     "logits":          [B, classes_num],
     "embedding":       [B, EMBED_DIMS[name]]}

``forward_logmel`` takes pre-computed log-mels ``[B, 1, T, mel_bins]``
(the output of ``extract_logmel``) and skips the front end.

SpecAugment (time/frequency stripe dropping) is applied only in training
mode and only when ``spec_augment=True``; mixup only in training mode when a
``mixup_lambda`` tensor is passed.  Neither has parameters or buffers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from adv.models.frontend import LogmelFilterBank, Spectrogram

__all__ = [
    "ConvBlock",
    "ConvBlock5x5",
    "SpecAugmentation",
    "do_mixup",
    "PannBase",
    "Cnn14",
    "Cnn10",
    "Cnn6",
    "MobileNetV1",
    "ARCHITECTURES",
    "EMBED_DIMS",
    "build_pann",
    "embed_dim",
]


# --------------------------------------------------------------------------
# initialisation (as in the reference training code)
# --------------------------------------------------------------------------
def _init_layer(layer: nn.Module) -> None:
    nn.init.xavier_uniform_(layer.weight)
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)


def _init_bn(bn: nn.BatchNorm2d) -> None:
    nn.init.zeros_(bn.bias)
    nn.init.ones_(bn.weight)


# --------------------------------------------------------------------------
# augmentation (no parameters)
# --------------------------------------------------------------------------
class _DropStripes(nn.Module):
    def __init__(self, dim: int, drop_width: int, stripes_num: int):
        super().__init__()
        if dim not in (2, 3):
            raise ValueError("dim must be 2 (time) or 3 (frequency)")
        self.dim = dim
        self.drop_width = int(drop_width)
        self.stripes_num = int(stripes_num)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_width <= 0 or self.stripes_num <= 0:
            return x
        total = x.shape[self.dim]
        batch = x.shape[0]
        keep = torch.ones(batch, total, device=x.device, dtype=x.dtype)
        for n in range(batch):
            for _ in range(self.stripes_num):
                width = int(torch.randint(0, self.drop_width + 1, (1,)))
                if width == 0 or width >= total:
                    continue
                start = int(torch.randint(0, total - width + 1, (1,)))
                keep[n, start : start + width] = 0
        if self.dim == 2:
            return x * keep[:, None, :, None]
        return x * keep[:, None, None, :]


class SpecAugmentation(nn.Module):
    """Zero random time and frequency stripes of a ``[B, C, T, F]`` tensor (training only)."""

    def __init__(
        self, time_drop_width: int = 64, time_stripes_num: int = 2, freq_drop_width: int = 8, freq_stripes_num: int = 2
    ):
        super().__init__()
        self.time_dropper = _DropStripes(2, time_drop_width, time_stripes_num)
        self.freq_dropper = _DropStripes(3, freq_drop_width, freq_stripes_num)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.freq_dropper(self.time_dropper(x))


def do_mixup(x: torch.Tensor, mixup_lambda: torch.Tensor) -> torch.Tensor:
    """Reference PANN mixup: mixes consecutive pairs; ``[2N, ...] -> [N, ...]``.

    ``mixup_lambda`` has length 2N with ``lambda[2i] + lambda[2i+1] == 1``.
    """
    if x.shape[0] % 2 or mixup_lambda.shape[0] != x.shape[0]:
        raise ValueError("mixup needs an even batch and one lambda per example")
    lam = mixup_lambda.to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
    return x[0::2] * lam[0::2] + x[1::2] * lam[1::2]


# --------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------
def _pool(x: torch.Tensor, pool_size: tuple[int, int], pool_type: str) -> torch.Tensor:
    if pool_size == (1, 1):
        return x
    if pool_type == "avg":
        return F.avg_pool2d(x, kernel_size=pool_size)
    if pool_type == "max":
        return F.max_pool2d(x, kernel_size=pool_size)
    if pool_type == "avg+max":
        return F.avg_pool2d(x, kernel_size=pool_size) + F.max_pool2d(x, kernel_size=pool_size)
    raise ValueError(f"unknown pool_type {pool_type!r}")


class ConvBlock(nn.Module):
    """Two 3x3 conv-BN-ReLU layers followed by pooling (Cnn14 / Cnn10)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        _init_layer(self.conv1)
        _init_layer(self.conv2)
        _init_bn(self.bn1)
        _init_bn(self.bn2)

    def forward(self, x: torch.Tensor, pool_size=(2, 2), pool_type: str = "avg") -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return _pool(x, tuple(pool_size), pool_type)


class ConvBlock5x5(nn.Module):
    """One 5x5 conv-BN-ReLU layer followed by pooling (Cnn6)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 5, stride=1, padding=2, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        _init_layer(self.conv1)
        _init_bn(self.bn1)

    def forward(self, x: torch.Tensor, pool_size=(2, 2), pool_type: str = "avg") -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        return _pool(x, tuple(pool_size), pool_type)


# --------------------------------------------------------------------------
# shared skeleton
# --------------------------------------------------------------------------
class PannBase(nn.Module):
    """Front end + ``bn0`` + (subclass trunk) + official pooling head.

    Subclasses build their trunk, ``fc1`` and ``fc_audioset`` and implement
    :meth:`_trunk`, mapping ``[B, 1, T, mel]`` to ``[B, C, T', F']``.
    """

    arch_name = "PannBase"
    #: dropout before fc1 (the official head)
    head_dropout = 0.5

    def __init__(
        self,
        sample_rate: int = 32000,
        window_size: int = 1024,
        hop_size: int = 320,
        mel_bins: int = 64,
        fmin: float = 50,
        fmax: float = 14000,
        classes_num: int = 527,
        *,
        spec_augment: bool = False,
    ):
        super().__init__()
        self.sample_rate = int(sample_rate)
        self.window_size = int(window_size)
        self.hop_size = int(hop_size)
        self.mel_bins = int(mel_bins)
        self.fmin = float(fmin)
        self.fmax = float(fmax)
        self.classes_num = int(classes_num)
        #: apply SpecAugment in training mode (off by default)
        self.spec_augment = bool(spec_augment)

        self.spectrogram_extractor = Spectrogram(
            n_fft=window_size, hop_length=hop_size, center=True, pad_mode="reflect"
        )
        self.logmel_extractor = LogmelFilterBank(
            sr=sample_rate, n_fft=window_size, n_mels=mel_bins, fmin=fmin, fmax=fmax, ref=1.0, amin=1e-10, top_db=None
        )
        self.spec_augmenter = SpecAugmentation(
            time_drop_width=64, time_stripes_num=2, freq_drop_width=8, freq_stripes_num=2
        )
        self.bn0 = nn.BatchNorm2d(mel_bins)
        _init_bn(self.bn0)

    # -- subclass hook ------------------------------------------------------
    def _trunk(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def embedding_dim(self) -> int:
        return self.fc1.out_features

    # -- front end ----------------------------------------------------------
    def extract_logmel(self, waveform: torch.Tensor) -> torch.Tensor:
        """``[B, samples]`` (or ``[samples]``) -> log-mel ``[B, 1, T, mel_bins]`` (before bn0)."""
        if waveform.dim() == 1:
            waveform = waveform.unsqueeze(0)
        if waveform.dim() != 2:
            raise ValueError(f"waveform must be [batch, samples], got shape {tuple(waveform.shape)}")
        if waveform.shape[-1] <= self.window_size // 2:
            raise ValueError(
                f"waveform too short: {waveform.shape[-1]} samples, need more than {self.window_size // 2}"
            )
        return self.logmel_extractor(self.spectrogram_extractor(waveform))

    # -- forward ------------------------------------------------------------
    def forward(self, waveform: torch.Tensor, mixup_lambda: torch.Tensor | None = None) -> dict:
        return self.forward_logmel(self.extract_logmel(waveform), mixup_lambda=mixup_lambda)

    def forward_logmel(self, logmel: torch.Tensor, mixup_lambda: torch.Tensor | None = None) -> dict:
        """Run from log-mels ``[B, 1, T, mel_bins]`` (as from :meth:`extract_logmel`)."""
        if logmel.dim() == 3:
            logmel = logmel.unsqueeze(1)
        if logmel.dim() != 4 or logmel.shape[1] != 1 or logmel.shape[-1] != self.mel_bins:
            raise ValueError(f"logmel must be [B, 1, T, {self.mel_bins}], got {tuple(logmel.shape)}")
        # bn0 normalises each mel bin: move mel to the channel axis and back
        x = self.bn0(logmel.transpose(1, 3)).transpose(1, 3)
        if self.training and self.spec_augment:
            x = self.spec_augmenter(x)
        if self.training and mixup_lambda is not None:
            x = do_mixup(x, mixup_lambda)
        x = self._trunk(x)  # [B, C, T', F']
        x = torch.mean(x, dim=3)  # mean over frequency
        x = torch.amax(x, dim=2) + torch.mean(x, dim=2)  # max + mean over time
        x = F.dropout(x, p=self.head_dropout, training=self.training)
        x = F.relu(self.fc1(x))
        embedding = F.dropout(x, p=0.5, training=self.training)
        logits = self.fc_audioset(x)
        return {"clipwise_output": torch.sigmoid(logits), "logits": logits, "embedding": embedding}


# --------------------------------------------------------------------------
# architectures
# --------------------------------------------------------------------------
def _only_default_width(name: str, width_mult) -> None:
    if width_mult is not None and float(width_mult) != 1.0:
        raise ValueError(f"width_mult is only supported by MobileNetV1, not {name}")


class Cnn14(PannBase):
    """6 double-conv blocks (64..2048 channels), 2048-d embedding (~80.8M params)."""

    arch_name = "Cnn14"

    def __init__(
        self,
        sample_rate: int = 32000,
        window_size: int = 1024,
        hop_size: int = 320,
        mel_bins: int = 64,
        fmin: float = 50,
        fmax: float = 14000,
        classes_num: int = 527,
        width_mult: float = 1.0,
        *,
        spec_augment: bool = False,
    ):
        _only_default_width(type(self).__name__, width_mult)
        super().__init__(
            sample_rate, window_size, hop_size, mel_bins, fmin, fmax, classes_num, spec_augment=spec_augment
        )
        self.conv_block1 = ConvBlock(1, 64)
        self.conv_block2 = ConvBlock(64, 128)
        self.conv_block3 = ConvBlock(128, 256)
        self.conv_block4 = ConvBlock(256, 512)
        self.conv_block5 = ConvBlock(512, 1024)
        self.conv_block6 = ConvBlock(1024, 2048)
        self.fc1 = nn.Linear(2048, 2048, bias=True)
        self.fc_audioset = nn.Linear(2048, classes_num, bias=True)
        _init_layer(self.fc1)
        _init_layer(self.fc_audioset)

    def _trunk(self, x: torch.Tensor) -> torch.Tensor:
        blocks = (
            self.conv_block1,
            self.conv_block2,
            self.conv_block3,
            self.conv_block4,
            self.conv_block5,
            self.conv_block6,
        )
        for i, block in enumerate(blocks):
            x = block(x, pool_size=(1, 1) if i == 5 else (2, 2), pool_type="avg")
            x = F.dropout(x, p=0.2, training=self.training)
        return x


class _FourBlockCnn(PannBase):
    """Cnn10 / Cnn6 trunk: 4 conv blocks (64..512 channels) of type `block`, 512-d embedding."""

    block: type[nn.Module] = ConvBlock

    def __init__(
        self,
        sample_rate: int = 32000,
        window_size: int = 1024,
        hop_size: int = 320,
        mel_bins: int = 64,
        fmin: float = 50,
        fmax: float = 14000,
        classes_num: int = 527,
        width_mult: float = 1.0,
        *,
        spec_augment: bool = False,
    ):
        _only_default_width(type(self).__name__, width_mult)
        super().__init__(
            sample_rate, window_size, hop_size, mel_bins, fmin, fmax, classes_num, spec_augment=spec_augment
        )
        self.conv_block1 = self.block(1, 64)
        self.conv_block2 = self.block(64, 128)
        self.conv_block3 = self.block(128, 256)
        self.conv_block4 = self.block(256, 512)
        self.fc1 = nn.Linear(512, 512, bias=True)
        self.fc_audioset = nn.Linear(512, classes_num, bias=True)
        _init_layer(self.fc1)
        _init_layer(self.fc_audioset)

    def _trunk(self, x: torch.Tensor) -> torch.Tensor:
        for block in (self.conv_block1, self.conv_block2, self.conv_block3, self.conv_block4):
            x = block(x, pool_size=(2, 2), pool_type="avg")
            x = F.dropout(x, p=0.2, training=self.training)
        return x


class Cnn10(_FourBlockCnn):
    """4 double-conv blocks (64..512 channels), 512-d embedding (~5.2M params)."""

    arch_name = "Cnn10"
    block = ConvBlock


class Cnn6(_FourBlockCnn):
    """4 single 5x5-conv blocks (64..512 channels), 512-d embedding (~4.8M params)."""

    arch_name = "Cnn6"
    block = ConvBlock5x5


def _conv_bn(inp: int, oup: int, stride: int) -> nn.Sequential:
    """3x3 conv -> avg-pool(stride) -> BN -> ReLU. Indices 0..3 match the official keys."""
    layers = nn.Sequential(
        nn.Conv2d(inp, oup, 3, 1, 1, bias=False),
        nn.AvgPool2d(stride),
        nn.BatchNorm2d(oup),
        nn.ReLU(inplace=True),
    )
    _init_layer(layers[0])
    _init_bn(layers[2])
    return layers


def _conv_dw(inp: int, oup: int, stride: int) -> nn.Sequential:
    """Depthwise 3x3 -> pool -> BN -> ReLU -> pointwise 1x1 -> BN -> ReLU (indices 0..6)."""
    layers = nn.Sequential(
        nn.Conv2d(inp, inp, 3, 1, 1, groups=inp, bias=False),
        nn.AvgPool2d(stride),
        nn.BatchNorm2d(inp),
        nn.ReLU(inplace=True),
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False),
        nn.BatchNorm2d(oup),
        nn.ReLU(inplace=True),
    )
    _init_layer(layers[0])
    _init_bn(layers[2])
    _init_layer(layers[4])
    _init_bn(layers[5])
    return layers


# (in, out, stride) of the official MobileNetV1 at width 1.0
_MOBILENET_V1_CFG = (
    (32, 64, 1),
    (64, 128, 2),
    (128, 128, 1),
    (128, 256, 2),
    (256, 256, 1),
    (256, 512, 2),
    (512, 512, 1),
    (512, 512, 1),
    (512, 512, 1),
    (512, 512, 1),
    (512, 512, 1),
    (512, 1024, 2),
    (1024, 1024, 1),
)


class MobileNetV1(PannBase):
    """Depthwise-separable CNN, 1024*width_mult-d embedding (~4.3M params at width 1.0)."""

    arch_name = "MobileNetV1"

    def __init__(
        self,
        sample_rate: int = 32000,
        window_size: int = 1024,
        hop_size: int = 320,
        mel_bins: int = 64,
        fmin: float = 50,
        fmax: float = 14000,
        classes_num: int = 527,
        width_mult: float = 1.0,
        *,
        spec_augment: bool = False,
    ):
        super().__init__(
            sample_rate, window_size, hop_size, mel_bins, fmin, fmax, classes_num, spec_augment=spec_augment
        )
        if width_mult <= 0:
            raise ValueError("width_mult must be > 0")
        self.width_mult = float(width_mult)

        def ch(c: int) -> int:
            return max(1, int(round(c * self.width_mult)))

        layers = [_conv_bn(1, ch(32), 2)]
        layers += [_conv_dw(ch(i), ch(o), s) for i, o, s in _MOBILENET_V1_CFG]
        self.features = nn.Sequential(*layers)
        width = ch(1024)
        self.fc1 = nn.Linear(width, width, bias=True)
        self.fc_audioset = nn.Linear(width, classes_num, bias=True)
        _init_layer(self.fc1)
        _init_layer(self.fc_audioset)

    def _trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


# --------------------------------------------------------------------------
# registry / factory
# --------------------------------------------------------------------------
ARCHITECTURES: dict[str, type[PannBase]] = {
    "Cnn14": Cnn14,
    "Cnn10": Cnn10,
    "Cnn6": Cnn6,
    "MobileNetV1": MobileNetV1,
}

#: embedding size of each architecture at its default width
EMBED_DIMS: dict[str, int] = {"Cnn14": 2048, "Cnn10": 512, "Cnn6": 512, "MobileNetV1": 1024}


def canonical_name(name: str) -> str:
    """Case-insensitive lookup of an architecture name (``'cnn14'`` -> ``'Cnn14'``)."""
    for key in ARCHITECTURES:
        if key.lower() == str(name).lower():
            return key
    raise ValueError(f"unknown PANN architecture {name!r}; choose from {sorted(ARCHITECTURES)}")


def embed_dim(name: str, width_mult: float = 1.0) -> int:
    """Embedding size for ``name`` (MobileNetV1 scales with ``width_mult``)."""
    key = canonical_name(name)
    if key == "MobileNetV1":
        return max(1, int(round(1024 * width_mult)))
    return EMBED_DIMS[key]


def build_pann(name: str, **kw) -> PannBase:
    """Build a PANN by name; keyword arguments go to the constructor.

    ``width_mult`` is accepted by every architecture but only MobileNetV1
    uses it; the others reject values other than 1.0.
    """
    return ARCHITECTURES[canonical_name(name)](**kw)
