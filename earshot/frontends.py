"""Feature front ends: audio clip in, 2-D feature map (frames, bins) out.

One code path for training and inference: the trainer imports this module, so the features a
model was trained on are the features it sees on the Pi (and, for ``q15``, on the RP2040).

Front ends
----------
``stft``   scipy.signal.stft(fs=16000, nperseg=255, noverlap=124, nfft=256), magnitude
           (computed by :func:`stft` with numpy.fft, equal to scipy.signal.stft: tested).
           Native shape (129 bins, 124 frames); the model sees it transposed, (124, 129).
``q15``    CMSIS-DSP fixed point, as the RP2040 firmware computes it: periodic Hann 256 in q15,
           arm_mult_q15 -> arm_rfft_q15 (256) -> arm_cmplx_mag_q15, hop 128, 124 frames x 129
           bins. Bit-identical to the firmware (same CMSIS-DSP release, 1.10.3).
``q15log`` the q15 magnitudes as ``ln(1 + m)``: level changes become offsets; the int8 input
           is a table of the 32768 magnitudes (``earshot.quant.log_mag_int8_table``), which the
           firmware holds as at most 256 breakpoints, so no logarithm runs on the device.
``logmel`` log mel energies (25 ms Hann window, 10 ms hop, 40 mel bands 20-8000 Hz), the
           representation the NXP i.MX RT sound-classification guide recommends; (98, 40).

Every front end takes one clip of exactly ``clip_samples`` samples at 16 kHz (float in [-1, 1)
or int16) and returns float32 ``(frames, bins)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .audio import CLIP_SAMPLES, SAMPLE_RATE, to_float, to_int16

_REGISTRY: dict[str, type[FrontEnd]] = {}


class FrontEndError(ValueError):
    """A front end name or parameter is not valid."""


@dataclass
class FrontEnd:
    """Base class: parameters are dataclass fields, recorded verbatim in the bundle manifest."""

    name: str = field(default="", init=False)
    sample_rate: int = SAMPLE_RATE
    clip_samples: int = CLIP_SAMPLES

    def params(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("name")
        return d

    def to_manifest(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.params()}

    @property
    def shape(self) -> tuple[int, int]:
        """(frames, bins) of the model-facing feature map."""
        raise NotImplementedError

    def features(self, audio: np.ndarray) -> np.ndarray:
        """One clip -> float32 (frames, bins)."""
        raise NotImplementedError

    def _check_clip(self, audio: np.ndarray) -> np.ndarray:
        a = np.asarray(audio)
        if a.ndim != 1 or a.shape[0] != self.clip_samples:
            raise FrontEndError(
                f"{self.name}: expected a mono clip of {self.clip_samples} samples, "
                f"got shape {a.shape}"
            )
        return a


def hann_periodic(n: int) -> np.ndarray:
    """scipy.signal.get_window("hann", n): a symmetric Hann of n + 1 points without the last,
    computed the way scipy does (0.5 + 0.5 cos over linspace(-pi, pi)), so values match bit for bit."""
    fac = np.linspace(-np.pi, np.pi, n + 1)
    w = np.zeros(n + 1)
    for k, a in enumerate((0.5, 0.5)):
        w += a * np.cos(k * fac)
    return w[:-1]


def stft(x: np.ndarray, nperseg: int, noverlap: int, nfft: int, boundary: bool = True) -> np.ndarray:
    """``scipy.signal.stft(x, window="hann", scaling="spectrum")``'s Z, with numpy only.

    ``boundary=True`` is scipy's ``boundary="zeros", padded=True``; False is ``boundary=None,
    padded=False``. The arithmetic follows scipy's, and numpy.fft is the same pocketfft as
    scipy.fft in double precision, so wherever scipy computes in float64 (float64 input, or any
    input with boundary padding: every front end here) the result is equal to the bit (tested);
    float32 input without padding differs by float32 round-off. Importing scipy.signal costs
    about 80 MB and scipy.fft about 30 MB of resident memory; numpy.fft nothing more.
    """
    single = x.dtype == np.float32
    dt = np.float32 if single else np.float64
    x = x.astype(dt, copy=False)
    step = nperseg - noverlap
    if boundary:  # scipy pads the end with float64 zeros, so from here on it computes in float64
        x = np.concatenate([np.zeros(nperseg // 2, dt), x, np.zeros(nperseg // 2, dt)])
        x = np.concatenate([x, np.zeros((-(x.size - nperseg) % step) % nperseg)])
    win: np.ndarray = hann_periodic(nperseg)
    if single:
        win = win.astype(np.complex64)  # scipy casts the window to the output type
    scale = np.sqrt(1.0 / win.sum() ** 2)
    frames = np.lib.stride_tricks.sliding_window_view(x, nperseg)[::step]
    z = np.fft.rfft((win * frames).real, n=nfft, axis=-1)
    z *= scale
    return z.astype(np.complex64 if single else np.complex128, copy=False).T


def _check_window(who: str, length: tuple[str, int], overlap: tuple[str, int],
                  nfft: tuple[str, int], clip: int) -> None:
    """A window of ``length`` samples, ``overlap`` of them shared, FFT of ``nfft``, in a clip."""
    (ln, n), (on, o), (fn, f) = length, overlap, nfft
    if not 0 < n <= clip:
        raise FrontEndError(f"{who}: {ln} must be from 1 to clip_samples ({clip}), got {n}")
    if not 0 <= o < n:
        raise FrontEndError(f"{who}: {on} must be from 0 to {ln} - 1 ({n - 1}), got {o}")
    if f < n:
        raise FrontEndError(f"{who}: {fn} must be at least {ln} ({n}), got {f}")


def register(cls: type[FrontEnd]) -> type[FrontEnd]:
    name = cls.__dataclass_fields__["name"].default
    assert isinstance(name, str), cls
    _REGISTRY[name] = cls
    return cls


@register
@dataclass
class StftFrontEnd(FrontEnd):
    """The original Pi pipeline's features (the seed, ``docs/architecture.md``): scipy STFT magnitude."""

    name: str = field(default="stft", init=False)
    nperseg: int = 255
    noverlap: int = 124
    nfft: int = 256

    def __post_init__(self) -> None:
        _check_window("stft", ("nperseg", self.nperseg), ("noverlap", self.noverlap),
                      ("nfft", self.nfft), self.clip_samples)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.native(np.zeros(self.clip_samples, np.float32)).shape[1], self.nfft // 2 + 1)

    def native(self, audio: np.ndarray) -> np.ndarray:
        """scipy's own orientation: (bins, frames) = (129, 124), float32."""
        a = to_float(self._check_clip(audio))
        return np.abs(stft(a, self.nperseg, self.noverlap, self.nfft)).astype(np.float32)

    def features(self, audio: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self.native(audio).T)


def hann_q15(n: int = 256) -> np.ndarray:
    """Periodic Hann window in q15: round(32767 * (0.5 - 0.5 cos(2 pi i / n))), i < n.

    Computed for i <= n/2 and mirrored (w[n - i] = w[i]) so float round-off cannot make the
    table asymmetric. The firmware's table is generated from this function, so both sides use
    the same numbers.
    """
    half = np.arange(n // 2 + 1, dtype=np.float64)
    w = np.round((0.5 - 0.5 * np.cos(2.0 * np.pi * half / n)) * 32767.0).astype(np.int16)
    return np.concatenate([w, w[1 : n - n // 2][::-1]]).astype(np.int16)


@register
@dataclass
class Q15FrontEnd(FrontEnd):
    """The RP2040's features: CMSIS-DSP q15 spectrogram magnitude (see module docstring)."""

    name: str = field(default="q15", init=False)
    fft_len: int = 256
    hop: int = 128
    frames: int = 124

    def __post_init__(self) -> None:
        need = (self.frames - 1) * self.hop + self.fft_len
        if need > self.clip_samples:
            raise FrontEndError(
                f"q15: {self.frames} frames of hop {self.hop} need {need} samples, "
                f"clip has {self.clip_samples}"
            )
        self._rfft: Any = None
        self._window = hann_q15(self.fft_len)

    def params(self) -> dict[str, Any]:
        return {
            "sample_rate": self.sample_rate,
            "clip_samples": self.clip_samples,
            "fft_len": self.fft_len,
            "hop": self.hop,
            "frames": self.frames,
        }

    @property
    def bins(self) -> int:
        return self.fft_len // 2 + 1

    @property
    def shape(self) -> tuple[int, int]:
        return (self.frames, self.bins)

    def _instance(self) -> Any:
        if self._rfft is None:
            try:
                import cmsisdsp as dsp
            except ImportError as e:  # pragma: no cover - depends on the install
                raise FrontEndError(
                    "q15 front end needs the 'cmsisdsp' package (pip install cmsisdsp==1.10.3)"
                ) from e
            inst = dsp.arm_rfft_instance_q15()
            status = dsp.arm_rfft_init_q15(inst, self.fft_len, 0, 1)
            if status != 0:
                raise FrontEndError(f"q15: arm_rfft_init_q15({self.fft_len}) failed: {status}")
            self._rfft = inst
        return self._rfft

    def frame(self, samples: np.ndarray) -> np.ndarray:
        """One frame of ``fft_len`` int16 samples -> ``bins`` int16 magnitudes (q15 pipeline)."""
        import cmsisdsp as dsp

        inst = self._instance()
        windowed = dsp.arm_mult_q15(np.asarray(samples, np.int16), self._window)
        spec = dsp.arm_rfft_q15(inst, windowed)
        # arm_rfft_q15 output: bin k at [2k], [2k+1]; bin N/2 (Nyquist) real at [N].
        return np.asarray(dsp.arm_cmplx_mag_q15(spec[: 2 * self.bins]), dtype=np.int16)

    def native(self, audio: np.ndarray) -> np.ndarray:
        """int16 (frames, bins) magnitudes, exactly as the firmware holds them."""
        pcm = to_int16(self._check_clip(audio))
        out = np.empty((self.frames, self.bins), np.int16)
        for f in range(self.frames):
            out[f] = self.frame(pcm[f * self.hop : f * self.hop + self.fft_len])
        return out

    def features(self, audio: np.ndarray) -> np.ndarray:
        return self.native(audio).astype(np.float32)


@register
@dataclass
class Q15LogFrontEnd(Q15FrontEnd):
    """The q15 spectrogram, log-compressed: ``ln(1 + magnitude)``, the same integer magnitudes
    as ``q15``. A gain is then an added constant rather than a factor, and the int8 input spends
    its 256 steps evenly over 90 dB instead of on the loudest bins (module docstring)."""

    name: str = field(default="q15log", init=False)

    def features(self, audio: np.ndarray) -> np.ndarray:
        return np.log1p(self.native(audio).astype(np.float32))


@register
@dataclass
class LogMelFrontEnd(FrontEnd):
    """Log mel energies: scipy STFT power, triangular mel filters (HTK mel scale), log."""

    name: str = field(default="logmel", init=False)
    win_length: int = 400
    hop: int = 160
    n_fft: int = 512
    n_mels: int = 40
    fmin: float = 20.0
    fmax: float = 8000.0
    log_floor: float = 1e-6

    def __post_init__(self) -> None:
        _check_window("logmel", ("win_length", self.win_length),
                      ("win_length - hop", self.win_length - self.hop), ("n_fft", self.n_fft),
                      self.clip_samples)
        self._fb = mel_filterbank(self.n_mels, self.n_fft, self.sample_rate, self.fmin, self.fmax)

    @property
    def shape(self) -> tuple[int, int]:
        return (1 + (self.clip_samples - self.win_length) // self.hop, self.n_mels)

    def features(self, audio: np.ndarray) -> np.ndarray:
        a = to_float(self._check_clip(audio)).astype(np.float64)
        z = stft(a, self.win_length, self.win_length - self.hop, self.n_fft, boundary=False)
        power = (np.abs(z) ** 2).T  # (frames, n_fft/2+1)
        mel = power @ self._fb.T
        return np.log(mel + self.log_floor).astype(np.float32)


def _hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)


def mel_filterbank(n_mels: int, n_fft: int, sr: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_mels, n_fft/2+1) triangular filters on the HTK mel scale, peak 1."""
    if not 0 <= fmin < fmax <= sr / 2:
        raise FrontEndError(f"logmel: need 0 <= fmin < fmax <= {sr / 2}, got {fmin}, {fmax}")
    bins = np.linspace(0, sr / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    fb = np.zeros((n_mels, bins.size))
    for m in range(n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        up = (bins - lo) / (mid - lo)
        down = (hi - bins) / (hi - mid)
        fb[m] = np.maximum(0.0, np.minimum(up, down))
    return fb


MCU_FRONTENDS = ("q15", "q15log")
"""Front ends the RP2040 firmware computes (firmware/core/es_frontend.c)."""


def names() -> list[str]:
    return sorted(_REGISTRY)


def create(name: str, **params: Any) -> FrontEnd:
    """Build a front end by name; unknown names and parameters are errors that say which."""
    if name not in _REGISTRY:
        raise FrontEndError(f"unknown front end {name!r}; choose one of {', '.join(names())}")
    cls = _REGISTRY[name]
    allowed = {k for k in cls.__dataclass_fields__ if k != "name"}
    bad = sorted(set(params) - allowed)
    if bad:
        raise FrontEndError(
            f"front end {name!r}: unknown parameter(s) {', '.join(bad)}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    for key, value in params.items():
        _check_param_type(name, key, cls.__dataclass_fields__[key].default, value)
    return cls(**params)


def _check_param_type(name: str, key: str, default: Any, value: Any) -> None:
    """An int parameter takes an int, a float one a number; never a bool or a string."""
    ok = not isinstance(value, bool) and (
        isinstance(value, int) if isinstance(default, int) else isinstance(value, (int, float))
    )
    if not ok:
        kind = "an integer" if isinstance(default, int) else "a number"
        raise FrontEndError(f"front end {name!r}: parameter {key} must be {kind}, got {value!r}")


def from_manifest(spec: dict[str, Any]) -> FrontEnd:
    """Rebuild the front end a bundle manifest names (``{"name": ..., "params": {...}}``)."""
    if not isinstance(spec, dict) or not isinstance(spec.get("params", {}), dict):
        raise FrontEndError('front end spec must be {"name": ..., "params": {...}}')
    try:
        return create(spec["name"], **spec.get("params", {}))
    except KeyError as e:
        raise FrontEndError(f"front end spec lacks key {e}") from e
