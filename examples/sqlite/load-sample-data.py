"""Create examples/sqlite/sources.db with three sources.

python examples/sqlite/load-sample-data.py
"""

import sqlite3
from pathlib import Path

ROWS = [
    ("ip-1", "10.0.0.1", "mta1.example.com", None, None),
    ("ip-2", "10.0.0.2", "mta2.example.com", 2525, 300),
    ("ip-3", "10.0.0.3", None, None, 60),
]

path = Path(__file__).with_name("sources.db")
with sqlite3.connect(path) as db:
    db.execute("DROP TABLE IF EXISTS sources")
    db.execute(
        "CREATE TABLE sources (name TEXT PRIMARY KEY, source_address TEXT, ehlo_domain TEXT, "
        "remote_port INTEGER, ttl INTEGER)"
    )
    db.executemany("INSERT INTO sources VALUES (?, ?, ?, ?, ?)", ROWS)
print(f"{path}: {len(ROWS)} sources")
