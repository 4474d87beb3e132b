"""Reading the lake from the command line: `smartray tables` and `smartray query`.

No stage of its own: the SQL engine and the text tables live in `smartray.tables.query`.
"""

from smartray.tables.query import format_lake, format_table, query

__all__ = ["format_lake", "format_table", "query"]
