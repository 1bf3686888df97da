"""The database layer: the pool, migrations, and one module of SQL per table family.

Connections come from the pool with ``row_factory=dict_row``: every row is a ``dict``.
"""

from typing import Any

import psycopg

# Rows are dicts (dict_row); typed as Any so call sites read row["column"] without casts.
DbConn = psycopg.Connection[Any]
