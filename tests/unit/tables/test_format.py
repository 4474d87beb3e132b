"""Query results and the tables listing as text: printed by Polars."""

import json

import pyarrow as pa

from smartray.tables import TableInfo
from smartray.tables.query import format_lake, format_table

RESULT = pa.table(
    {
        "reason": ["corrupt", "unsupported_format", None],
        "inputs": [2, 12345, None],
        "data": [b"ab", None, b"abcd"],
    }
)


def test_a_result_prints_every_column_whole_with_a_row_count():
    text = format_table(RESULT)
    header, rule, *rows, footer = text.splitlines()
    assert header.split("|")[1:-1] == [" reason             ", " inputs ", " data      "]
    assert set(rule) <= {"|", "-"}
    assert "unsupported_format" in rows[1]  # never cut
    assert "12345" in rows[1]  # no thousands separator in query results
    assert "<2 bytes>" in rows[0]
    assert footer == "(3 rows)"


def test_a_long_result_says_how_many_rows_are_not_shown():
    text = format_table(RESULT, max_rows=1)
    assert len(text.splitlines()) == 4
    assert text.endswith("(3 rows, 2 not shown)")
    assert format_table(RESULT.slice(0, 1)).endswith("(1 row)")


def test_csv_and_json_output_are_unchanged():
    assert format_table(RESULT, "json").splitlines()[0] == json.dumps(
        {"reason": "corrupt", "inputs": 2, "data": "<2 bytes>"}
    )
    assert format_table(RESULT, "csv").splitlines()[0] == '"reason","inputs","data"'


def test_columns_named_alike_both_show():
    table = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["n", "n"])
    header = format_table(table).splitlines()[0]
    assert [c.strip() for c in header.split("|")[1:-1]] == ["n", "n_2"]


class FakeLake:
    uri = "/some/lake"

    def __init__(self, infos):
        self.infos = infos

    def describe(self):
        return self.infos


def test_the_tables_listing_has_thousands_separators_in_bytes():
    text = format_lake(FakeLake([TableInfo("assets", 3, 9, 1234567, 2)]))
    lines = text.splitlines()
    assert lines[0] == "lake /some/lake"
    assert [c.strip() for c in lines[1].split("|")[1:-1]] == ["table", "version", "rows", "bytes"]
    assert [c.strip() for c in lines[3].split("|")[1:-1]] == ["assets", "3", "9", "1,234,567"]


def test_an_empty_lake_says_what_to_run():
    text = format_lake(FakeLake([]))
    assert text.splitlines()[-1] == "(no tables yet: run `smartray ingest` first)"
