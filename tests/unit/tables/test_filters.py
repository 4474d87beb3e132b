import pyarrow as pa
import pyarrow.dataset as pads
import pytest
from deltalake import DeltaTable, write_deltalake

from smartray.tables.filters import text


def test_filters_hold_on_files_that_delta_dml_rewrote(tmp_path):
    uri = str(tmp_path / "t")
    for i in range(3):
        write_deltalake(uri, pa.table({"job": ["ingest", "curate"], "x": [i, i]}), mode="append")
    DeltaTable(uri).optimize.compact()
    DeltaTable(uri).update(new_values={"job": "split"}, predicate="x = 0")  # rewrites a file
    ds = DeltaTable(uri).to_pyarrow_dataset()
    physical = [f.physical_schema.field("job").type for f in ds.get_fragments()]
    assert pa.string_view() in physical  # what delta-rs's DML wrote
    with pytest.raises(pa.ArrowNotImplementedError):  # why `text` exists
        ds.to_table(filter=pads.field("job") == "curate")
    assert ds.to_table(filter=text("job") == "curate").num_rows == 2
    assert ds.to_table(filter=text("job").isin(["split", "ingest"])).num_rows == 4
