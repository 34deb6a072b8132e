"""Receivers that count the encoded frames Janus forwards instead of decoding them.

With 156 streams on one core, decoding every received frame would make the group media
benchmark measure libvpx rather than forwarding. aiortc has no public way to receive without
decoding: each ``RTCRtpReceiver`` runs a thread that hands every complete frame it assembled
from RTP (its jitter buffer's ``JitterFrame``) to the decoder ``get_decoder(codec)`` gave it,
and puts what ``decode`` returns on the remote track's queue, where ``track.recv()`` takes it.

:func:`counting_receivers` replaces that ``get_decoder`` (the name imported into
``aiortc.rtcrtpreceiver``: a private hook, STYLE.md item 10) so that VP8 receivers get a
:class:`CountingDecoder`. It decodes nothing: for each frame it returns one
:class:`EncodedFrame` (the frame's bytes, as assembled), which the track yields in place of a
picture, so ``media.reception.count_frames`` counts it on the event loop at the moment a decoded
picture would have arrived, per track, unchanged. :func:`set_decoding` switches every such
decoder back to aiortc's own, for the same-run comparison of the receivers' CPU both ways.

Pinned: aiortc is exact in pyproject.toml; tests/test_bench_counting.py fails when aiortc
stops handing frames to the hook. Only the benchmark's measuring process installs it: tests
and the product decode as aiortc does.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiortc.rtcrtpreceiver
from aiortc.codecs.base import Decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

COUNTED_MIME_TYPE = "video/vp8"
#: The name in ``aiortc.rtcrtpreceiver`` whose decoder its receiver threads call.
HOOK = "get_decoder"
#: Set: installed decoders decode with aiortc's decoder, as if the hook were not there.
_decoding = threading.Event()


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One complete encoded frame a receiver assembled from RTP (what it would have decoded)."""

    data: bytes
    #: RTP timestamp, mapped by the receiver to start at 0.
    timestamp: int


class CountingDecoder(Decoder):
    """Hands each encoded frame on undecoded; decodes with ``stock`` while decoding is set."""

    def __init__(self, stock: Callable[[], Decoder]) -> None:
        self._make_stock = stock
        self._stock: Decoder | None = None  # made on first use: counting allocates no codec
        #: Frames handed on undecoded (the receiver's decoder thread writes it).
        self.counted = 0

    def decode(self, encoded_frame: JitterFrame) -> list[Any]:
        if _decoding.is_set():
            if self._stock is None:
                self._stock = self._make_stock()
            return list(self._stock.decode(encoded_frame))
        self.counted += 1
        return [EncodedFrame(bytes(encoded_frame.data), encoded_frame.timestamp)]


def set_decoding(on: bool) -> None:
    """Make every counting decoder (existing and new) decode as aiortc would, or count."""
    if on:
        _decoding.set()
    else:
        _decoding.clear()


@contextlib.contextmanager
def counting_receivers(made: list[CountingDecoder] | None = None) -> Iterator[None]:
    """Within: receivers whose decoder thread starts its VP8 decoder count instead of decoding
    (``made`` collects those decoders). On exit aiortc's ``get_decoder`` is back; decoders
    already made stay as they are."""
    stock: Callable[[RTCRtpCodecParameters], Decoder] | None = getattr(
        aiortc.rtcrtpreceiver, HOOK, None
    )
    if stock is None:
        raise RuntimeError(f"aiortc.rtcrtpreceiver has no {HOOK}: the counting hook is gone")

    def get_decoder(codec: RTCRtpCodecParameters) -> Decoder:
        if codec.mimeType.lower() != COUNTED_MIME_TYPE:
            return stock(codec)
        decoder = CountingDecoder(lambda: stock(codec))
        if made is not None:
            made.append(decoder)
        return decoder

    setattr(aiortc.rtcrtpreceiver, HOOK, get_decoder)
    try:
        yield
    finally:
        setattr(aiortc.rtcrtpreceiver, HOOK, stock)
