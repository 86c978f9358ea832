"""How a curve is stored: its values and its steps, each one compact blob that reads back bit for bit.

A blob is a 6-byte header, then the array's elements as byte planes (every element's first byte,
then every second byte, ...), compressed with raw DEFLATE (RFC 1951, `zlib` with wbits −15)
where that is smaller:

    byte 0      codec: 1 float64, 2 float32, 3 ratio, 4 int64, 5 scaled
                (+ 0x80: planes stored uncompressed)
    bytes 1-4   element count (uint32, little-endian)
    byte 5      bytes per element in the planes (1, 2, 4 or 8)
    bytes 6-13  ratio and scaled only: the denominator n (uint64)

Values are float64 as the engine records them; the encoder picks, per curve, the smallest form
that gives back exactly those bits:

- **ratio**: every value is k/n for integers k and one n (an accuracy: correct / examples), checked
  by computing k/n as the decoder will; stored as the differences of consecutive k, 1–8 bytes each;
- **float32**: every value is exactly a float32 (a loss a float32 run computed in one pass), stored
  as 4 bytes, each XORed with the previous value's bits;
- **scaled**: every value is S/n for one n that is the denominator of another curve of the same run
  (a test loss: the sum over evaluation passes of float32 losses × pass sizes, over the test set's
  size, which its accuracy's denominator gives), where the float64 numerators S have far fewer
  significant bits than the values; stored as S, as float64 below;
- **float64**: anything else, 8 bytes XORed with the previous value's bits (neighbours share sign,
  exponent and leading mantissa bits, so the leading planes are mostly zero and compress).

`encode_run` encodes the curves of one run together (the denominators of its ratio curves are the
candidates for its scaled ones); `encode_values` encodes one curve alone.

Steps (int64) are stored as differences (wrapping, so any int64 array round-trips), 1–8 bytes each;
the catalog keeps each distinct step array once (table `steps`, keyed by the SHA-256 of its raw
little-endian bytes). Decoding groups blobs of the same shape and decodes each group with a few
array operations, which is what makes reading 10⁴ runs' curves fast.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Sequence
from math import lcm

import numpy as np

FLOAT64, FLOAT32, RATIO, INT64, SCALED = 1, 2, 3, 4, 5
_KINDS = (FLOAT64, FLOAT32, RATIO, INT64, SCALED)
RAW = 0x80  # planes stored as they are (a short curve, where zlib's own bytes would cost more)
_HEAD = struct.Struct("<BIB")
_DENOM = struct.Struct("<Q")
_LEVEL = 6
_WBITS = -15  # raw DEFLATE: no zlib header or checksum (the catalog and bundles have their own checks)
_MAX_DENOMINATOR = 1 << 32
_UINT = {1: "<u1", 2: "<u2", 4: "<u4", 8: "<u8"}
_INT = {1: "<i1", 2: "<i2", 4: "<i4", 8: "<i8"}


class CodecError(ValueError):
    """A blob that is not a curve this module wrote (a corrupt row or bundle)."""


# ---- encoding ---------------------------------------------------------------------------------
def encode_values(values: np.ndarray) -> bytes:
    """The smallest exact blob of one float64 curve."""
    return _encode(_float64(values), ())


def encode_run(curves: dict[str, np.ndarray]) -> dict[str, bytes]:
    """The blobs of one run's curves: each the smallest exact form, the denominators of the run's
    ratio curves tried as the scale of the others."""
    arrays = {m: _float64(v) for m, v in curves.items()}
    ratios = {m: _as_ratio(v, v.view("<u8"), rounds=3) for m, v in arrays.items()}
    hints = tuple(sorted({r[0] for r in ratios.values() if r is not None and r[0] > 1}))
    return {m: _encode(v, hints, ratios[m]) for m, v in arrays.items()}


def _float64(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype="<f8").ravel()


def _encode(v: np.ndarray, hints: tuple[int, ...], ratio: tuple[int, np.ndarray] | None | bool = False) -> bytes:
    bits = v.view("<u8")
    with np.errstate(over="ignore"):
        f32 = v.astype("<f4")
    is_f32 = bool(np.array_equal(f32.astype("<f8").view("<u8"), bits))
    if ratio is False:  # not tried yet
        ratio = _as_ratio(v, bits, rounds=2 if is_f32 else 3)
    if ratio:
        n, k = ratio
        d = np.diff(k, prepend=np.int64(0))
        w = _int_width(d)
        return _pack(RATIO, v.size, w, d.astype(_INT[w]), _DENOM.pack(n))
    if is_f32:
        return _pack(FLOAT32, v.size, 4, _xor_prev(f32.view("<u4")))
    out = _pack(FLOAT64, v.size, 8, _xor_prev(bits))
    for n in hints:
        with np.errstate(all="ignore"):
            scaled = v * np.float64(n)
            exact = np.array_equal((scaled / np.float64(n)).view("<u8"), bits)
        if exact:
            blob = _pack(SCALED, v.size, 8, _xor_prev(scaled.view("<u8")), _DENOM.pack(n))
            out = blob if len(blob) < len(out) else out
    return out


def encode_steps(steps: np.ndarray) -> tuple[bytes, bytes]:
    """(SHA-256 of the raw little-endian int64 bytes, blob): the key the catalog shares them under."""
    s = np.ascontiguousarray(steps, dtype="<i8").ravel()
    with np.errstate(over="ignore"):
        d = np.diff(s, prepend=np.int64(0))  # wraps on overflow; the decoder's cumsum wraps back
    w = _int_width(d)
    return hashlib.sha256(s.tobytes()).digest(), _pack(INT64, s.size, w, d.astype(_INT[w]))


def steps_key(steps: np.ndarray) -> bytes:
    return hashlib.sha256(np.ascontiguousarray(steps, dtype="<i8").ravel().tobytes()).digest()


def _as_ratio(v: np.ndarray, bits: np.ndarray, rounds: int) -> tuple[int, np.ndarray] | None:
    """(n, k) with k / n == v bit for bit (as the decoder computes it), or None."""
    if v.size < 2:
        return None
    with np.errstate(invalid="ignore"):
        lo, hi = v.min(), v.max()
    if not (np.isfinite(lo) and np.isfinite(hi)) or max(-lo, hi) > 2.0**20:
        return None
    n = 1
    for _ in range(rounds):  # each round adds the denominator of the first value that is not k/n yet
        k = np.rint(v * n).astype(np.int64)
        bad = np.flatnonzero((k.astype("<f8") / n).view("<u8") != bits)
        if bad.size == 0:
            return n, k
        n = lcm(n, _denominator(float(v[bad[0]])))
        if n > _MAX_DENOMINATOR:
            return None
    return None


def _denominator(x: float, limit: int = 1 << 24) -> int:
    """The denominator of the last continued-fraction convergent of x below `limit` (a candidate
    only: whether k/n gives back the bits is checked by the caller)."""
    q0, q1, y = 1, 0, abs(x)
    if not y < 2.0**53:
        return 1
    for _ in range(64):
        a = int(y)
        q0, q1 = q1, a * q1 + q0
        if q1 > limit:
            return q0 or 1
        frac = y - a
        if frac < 2.0**-60:  # an integer, to float precision (and 1 / frac stays finite)
            break
        y = 1 / frac
    return q1 or 1


def _int_width(d: np.ndarray) -> int:
    if d.size == 0:
        return 1
    lo, hi = int(d.min()), int(d.max())
    for w in (1, 2, 4):
        bound = 1 << (8 * w - 1)
        if -bound <= lo and hi < bound:
            return w
    return 8


def _xor_prev(u: np.ndarray) -> np.ndarray:
    out = u.copy()
    out[1:] ^= u[:-1]
    return out


def _pack(codec: int, count: int, width: int, elements: np.ndarray, extra: bytes = b"") -> bytes:
    planes = np.ascontiguousarray(elements).view(np.uint8).reshape(count, width).T.tobytes()
    packed = zlib.compress(planes, _LEVEL, wbits=_WBITS)
    if len(packed) >= len(planes):
        codec, packed = codec | RAW, planes
    return _HEAD.pack(codec, count, width) + extra + packed


# ---- decoding ---------------------------------------------------------------------------------
def decode_values(blob: bytes) -> np.ndarray:
    return decode_many([blob])[0]


def decode_steps(blob: bytes) -> np.ndarray:
    return decode_many([blob])[0]


def decode_many(blobs: Sequence[bytes], *, strict: bool = False) -> list[np.ndarray]:
    """Every blob's array (float64 values or int64 steps), in order; blobs of one shape are decoded
    together. A blob this module did not write raises CodecError. `strict` (for files from elsewhere,
    a bundle's) never inflates a blob past the size its header declares, nor accepts trailing bytes."""
    out: list[np.ndarray | None] = [None] * len(blobs)
    by_head: dict[bytes, list[int]] = {}
    for i, head in enumerate([b[:6] for b in blobs]):  # codec, count, width: blobs of one shape together
        group = by_head.get(head)
        if group is None:
            group = by_head[head] = []
        group.append(i)
    for head, idx in by_head.items():
        if len(head) < _HEAD.size:
            raise CodecError("curve blob shorter than its header")
        codec, count, width = _HEAD.unpack(head)
        kind = codec & ~RAW
        if kind not in _KINDS or width not in _UINT:
            raise CodecError(f"unknown curve codec {codec} / width {width}")
        start, size = _HEAD.size + (_DENOM.size if kind in (RATIO, SCALED) else 0), count * width
        bodies = _bodies([blobs[i] for i in idx], start, size, raw=bool(codec & RAW), strict=strict)
        arr = np.frombuffer(b"".join(bodies), np.uint8).reshape(len(idx), width, count)
        elems = np.array(arr.transpose(0, 2, 1), order="C").view(_UINT[width]).reshape(len(idx), count)
        # in place where possible: on a VM, touching fresh memory costs more than the arithmetic
        if kind in (FLOAT64, SCALED, FLOAT32):
            np.bitwise_xor.accumulate(elems, axis=1, out=elems)
        if kind in (FLOAT64, SCALED):
            vals = elems.view("<f8")
            if kind == SCALED:
                vals /= _denominators(blobs, idx)[:, None]
        elif kind == FLOAT32:
            vals = elems.view("<f4").astype(np.float64)
        elif kind == INT64:
            vals = elems.view(_INT[width]).astype(np.int64)
            with np.errstate(over="ignore"):
                np.cumsum(vals, axis=1, out=vals)  # wraps, as the encoder's differences did
        else:  # k = cumulative sum of the differences: integers below 2**53, exact in float64
            vals = elems.view(_INT[width]).astype(np.float64)
            np.cumsum(vals, axis=1, out=vals)
            vals /= _denominators(blobs, idx)[:, None]
        for i, row in zip(idx, vals, strict=True):
            out[i] = row
    return out  # type: ignore[return-value]


def _bodies(blobs: list[bytes], start: int, size: int, raw: bool, strict: bool) -> list[bytes]:
    """The byte planes of blobs of one codec and shape, each checked to be `size` bytes."""
    try:
        if raw:
            bodies = [b[start:] for b in blobs]
        elif not strict:
            bodies = [zlib.decompress(memoryview(b)[start:], _WBITS) for b in blobs]
        else:
            bodies = []
            for b in blobs:
                inflate = zlib.decompressobj(_WBITS)
                bodies.append(inflate.decompress(b[start:], size + 1))
                if not inflate.eof or inflate.unconsumed_tail or inflate.unused_data:
                    raise CodecError("curve blob has bytes past its end or does not end")
    except zlib.error as exc:
        raise CodecError(f"curve blob does not decompress ({exc})") from None
    if any(len(b) != size for b in bodies):
        raise CodecError(f"a curve blob does not hold the {size} bytes its header says")
    return bodies


def _denominators(blobs: Sequence[bytes], idx: list[int]) -> np.ndarray:
    return np.array([_DENOM.unpack_from(blobs[i], _HEAD.size)[0] for i in idx], dtype=np.float64)


def element_count(blob: bytes) -> int:
    """How many elements a blob holds, read from its header alone."""
    if len(blob) < _HEAD.size:
        raise CodecError("curve blob shorter than its header")
    return int(_HEAD.unpack_from(blob)[1])
