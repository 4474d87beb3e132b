"""Types shared by the stages."""

from typing import Any

import numpy.typing as npt

# An 8-bit image: H x W (gray), H x W x 3 (BGR) or H x W x 4 (BGRA), dtype uint8.
# (Typed loosely: OpenCV's stubs return untyped-dtype arrays.)
Image = npt.NDArray[Any]

from enum import StrEnum  # noqa: E402


class Reason(StrEnum):
    """Why an input was not ingested: the `reason` column of the `quarantine` table."""

    EMPTY = "empty"  # zero bytes
    TRUNCATED = "truncated"  # the file ends before its format's end marker
    CORRUPT = "corrupt"  # claims an image format but does not decode
    UNSUPPORTED_FORMAT = "unsupported_format"  # not an image format smartray reads
    TOO_MANY_PIXELS = "too_many_pixels"  # header declares more pixels than allowed
    TOO_LARGE = "too_large"  # more bytes than allowed; never read
    UNREADABLE = "unreadable"  # listing or reading the file failed
    OUTSIDE_ROOT = "outside_root"  # a symlink that leaves the source root
    WORKER_CRASH = "worker_crash"  # its worker died every time it was tried
    INTERNAL_ERROR = "internal_error"  # an unexpected error while processing it (retried)
    DECODER_CRASH = "decoder_crash"  # the video decoder's process died on it
    DECODE_TIMEOUT = "decode_timeout"  # decoding the video ran past its time limit


class RejectedInput(Exception):
    """Raised inside an operator to turn one input into a quarantine row.

    Caught in the same process by the batch function; never crosses a Ray boundary.
    """

    def __init__(self, reason: Reason, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail

    def __reduce__(self) -> tuple[type, tuple[Reason, str]]:
        return (type(self), (self.reason, self.detail))
