"""The hello exchange: what a client offers, what the server chooses, and the named weight sets.

Pure data and validation; the JSON shapes are specified in docs/protocol.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

from presence.protocol.errors import InvalidPayload, NegotiationFailed, UnsupportedVersion
from presence.protocol.frames import VERSION

PCM_S16LE: Final = "pcm_s16le"
OPUS: Final = "opus"
CODECS: Final = (PCM_S16LE, OPUS)
PCM_SAMPLE_RATES: Final = (8000, 16000, 24000, 32000, 44100, 48000)

#: Optional features a client may ask for in its hello (``features``); the server hello lists
#: the ones it agreed to. Clients that ask for none see exactly the version-1 behaviour.
EXPRESSIONS: Final = "expressions"
FEATURES: Final = (EXPRESSIONS,)

OCULUS15: Final = "oculus15"
ARKIT: Final = "arkit"

#: Weight sets by wire id. The order of names is the order of weights in an animation frame.
WEIGHT_SETS: Final[dict[str, tuple[int, tuple[str, ...]]]] = {
    OCULUS15: (0, ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou")),
    ARKIT: (
        1,
        (
            "jawOpen",
            "jawForward",
            "mouthClose",
            "mouthFunnel",
            "mouthPucker",
            "mouthSmileLeft",
            "mouthSmileRight",
            "mouthStretchLeft",
            "mouthStretchRight",
            "mouthRollLower",
            "mouthRollUpper",
            "mouthShrugLower",
            "mouthShrugUpper",
            "mouthPressLeft",
            "mouthPressRight",
            "mouthLowerDownLeft",
            "mouthLowerDownRight",
            "mouthUpperUpLeft",
            "mouthUpperUpRight",
            "tongueOut",
        ),
    ),
}


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """One audio stream format: codec, sample rate and (always, in v1) one channel."""

    codec: str
    sample_rate: int
    channels: int = 1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ClientOffer:
    """A validated client hello: formats in preference order, weight sets in preference order."""

    audio_in: tuple[AudioFormat, ...]
    audio_out: tuple[AudioFormat, ...]
    weight_sets: tuple[str, ...]
    client: str = ""
    animation_fps: int | None = None
    features: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ServerCapabilities:
    """What this server can decode, encode and animate, in its own preference order."""

    audio_in: tuple[AudioFormat, ...]
    audio_out: tuple[AudioFormat, ...]
    weight_sets: tuple[str, ...] = (OCULUS15, ARKIT)
    animation_fps: int = 60
    features: tuple[str, ...] = FEATURES


def _audio_format(value: Any, where: str) -> AudioFormat:
    if not isinstance(value, dict):
        raise InvalidPayload(f"{where}: each audio format must be an object")
    codec, rate, channels = value.get("codec"), value.get("sample_rate"), value.get("channels", 1)
    if not isinstance(codec, str) or not isinstance(rate, int) or isinstance(rate, bool):
        raise InvalidPayload(f"{where}: audio format needs a string 'codec' and an integer 'sample_rate'")
    if not isinstance(channels, int) or isinstance(channels, bool):
        raise InvalidPayload(f"{where}: 'channels' must be an integer")
    return AudioFormat(codec, rate, channels)


def _format_list(body: dict[str, Any], key: str) -> tuple[AudioFormat, ...]:
    value = body.get(key)
    if not isinstance(value, list) or not value or len(value) > 16:
        raise InvalidPayload(f"hello '{key}' must be a non-empty list of at most 16 audio formats")
    return tuple(_audio_format(item, key) for item in value)


def parse_client_hello(body: dict[str, Any]) -> ClientOffer:
    """Validate a client hello body; raises ``InvalidPayload`` or ``UnsupportedVersion``."""
    version = body.get("protocol")
    if version != VERSION:
        raise UnsupportedVersion(f"client hello asks for protocol {version!r}; this server speaks {VERSION}")
    weight_sets = body.get("weight_sets", [OCULUS15])
    if not isinstance(weight_sets, list) or not all(isinstance(name, str) for name in weight_sets):
        raise InvalidPayload("hello 'weight_sets' must be a list of names")
    fps = body.get("animation_fps")
    if fps is not None and (not isinstance(fps, int) or isinstance(fps, bool) or not 1 <= fps <= 120):
        raise InvalidPayload("hello 'animation_fps' must be an integer from 1 to 120")
    features = body.get("features", [])
    if (
        not isinstance(features, list)
        or len(features) > 16
        or not all(isinstance(name, str) and len(name) <= 64 for name in features)
    ):
        raise InvalidPayload("hello 'features' must be a list of at most 16 names")
    client = body.get("client", "")
    return ClientOffer(
        audio_in=_format_list(body, "audio_in"),
        audio_out=_format_list(body, "audio_out"),
        weight_sets=tuple(weight_sets),
        client=client if isinstance(client, str) else "",
        animation_fps=fps,
        features=tuple(features),
    )


def _choose(offered: tuple[AudioFormat, ...], supported: tuple[AudioFormat, ...], what: str) -> AudioFormat:
    for candidate in offered:  # the client's preference wins among what the server supports
        if candidate in supported:
            return candidate
    names = ", ".join(f"{f.codec}@{f.sample_rate}" for f in supported)
    raise NegotiationFailed(f"no common {what} format; server supports {names}")


@dataclass(frozen=True, slots=True)
class Agreement:
    """The outcome of negotiation; ``to_json`` is the server hello body."""

    session_id: str
    audio_in: AudioFormat
    audio_out: AudioFormat
    weight_set: str
    animation_fps: int
    engine: str
    features: tuple[str, ...] = ()

    @property
    def expressions(self) -> bool:
        return EXPRESSIONS in self.features

    @property
    def weight_set_id(self) -> int:
        return WEIGHT_SETS[self.weight_set][0]

    def to_json(self) -> dict[str, Any]:
        set_id, names = WEIGHT_SETS[self.weight_set]
        body: dict[str, Any] = {
            "protocol": VERSION,
            "session_id": self.session_id,
            "audio_in": self.audio_in.to_json(),
            "audio_out": self.audio_out.to_json(),
            "weight_set": {"id": set_id, "name": self.weight_set, "names": list(names)},
            "animation_fps": self.animation_fps,
            "engine": self.engine,
        }
        if self.features:  # only clients that asked for features see the key
            body["features"] = list(self.features)
        return body


def negotiate(offer: ClientOffer, caps: ServerCapabilities, session_id: str, engine: str) -> Agreement:
    """Pick the first client-preferred format and weight set the server supports."""
    weight_set = next((name for name in offer.weight_sets if name in caps.weight_sets), None)
    if weight_set is None:
        raise NegotiationFailed(f"no common weight set; server supports {', '.join(caps.weight_sets)}")
    return Agreement(
        session_id=session_id,
        audio_in=_choose(offer.audio_in, caps.audio_in, "input audio"),
        audio_out=_choose(offer.audio_out, caps.audio_out, "output audio"),
        weight_set=weight_set,
        animation_fps=offer.animation_fps or caps.animation_fps,
        engine=engine,
        features=tuple(name for name in caps.features if name in offer.features),
    )


def parse_server_hello(body: dict[str, Any]) -> Agreement:
    """Client side: read the server's choice back into an ``Agreement``."""
    try:
        weight_set = body["weight_set"]["name"]
        if weight_set not in WEIGHT_SETS:
            raise InvalidPayload(f"server chose unknown weight set {weight_set!r}")
        return Agreement(
            session_id=str(body["session_id"]),
            audio_in=_audio_format(body["audio_in"], "audio_in"),
            audio_out=_audio_format(body["audio_out"], "audio_out"),
            weight_set=weight_set,
            animation_fps=int(body["animation_fps"]),
            engine=str(body.get("engine", "")),
            features=tuple(str(name) for name in body.get("features", [])),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidPayload(f"malformed server hello: {exc}") from None
