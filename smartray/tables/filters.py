"""Dataset filters that hold on every file a table may have.

delta-rs's DML writes (delete, update, merge) store string columns as `string_view`,
and pyarrow's filter kernels do not compare `string_view` with a plain string: a filter
on such a column fails on those files unless it casts first.
"""

import pyarrow as pa
import pyarrow.dataset as pads


def text(name: str) -> pads.Expression:
    """String column `name` for a dataset filter, as plain `string` on every file."""
    return pads.field(name).cast(pa.string())
