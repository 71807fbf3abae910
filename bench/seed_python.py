"""What users run today: Fivetran's Python DocumentDB example's algorithm, reproduced with
pymongo for the benchmark: per collection, find({updated_at: {$gt: cursor}}) sorted by
updated_at with batch_size(100), one SQLite upsert per document (as the local tester applies
each upsert), a checkpoint (commit + state.json) every 1000 documents and at the end.
Usage: seed_python.py HOST PORT USER PASSWORD CAFILE DATABASE SQLITE_PATH STATE_PATH"""
import datetime
import json
import sqlite3
import sys

import pymongo

CHECKPOINT_INTERVAL = 1000


def value(v):
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)
    if isinstance(v, datetime.datetime):
        return v.isoformat()
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


def main():
    host, port, user, password, ca, dbname, sqlite_path, state_path = sys.argv[1:9]
    client = pymongo.MongoClient(host, int(port), tls=True, tlsCAFile=ca, username=user,
                                 password=password, authMechanism="SCRAM-SHA-1",
                                 retryWrites=False, directConnection=True)
    db = client[dbname]
    out = sqlite3.connect(sqlite_path)
    state = {}
    total = 0
    for table in ("users", "orders"):
        cursor = state.get(table + "_last_updated_at", "1990-01-01T00:00:00Z")
        since = datetime.datetime.fromisoformat(cursor.replace("Z", "+00:00"))
        columns = None
        n = 0
        last = since
        for doc in db[table].find({"updated_at": {"$gt": since}}).sort("updated_at", 1) \
                .batch_size(100):
            doc["_id"] = str(doc["_id"])
            row = {k: value(v) for k, v in doc.items()}
            if columns is None:
                columns = list(row)
                out.execute('CREATE TABLE IF NOT EXISTS "%s" (%s, PRIMARY KEY ("_id"))' % (
                    table, ", ".join('"%s"' % c for c in columns)))
            for c in row:
                if c not in columns:
                    out.execute('ALTER TABLE "%s" ADD COLUMN "%s"' % (table, c))
                    columns.append(c)
            out.execute('INSERT OR REPLACE INTO "%s" (%s) VALUES (%s)' % (
                table, ", ".join('"%s"' % c for c in row), ", ".join("?" * len(row))),
                list(row.values()))
            last = doc["updated_at"]
            n += 1
            if n % CHECKPOINT_INTERVAL == 0:
                out.commit()
                state[table + "_last_updated_at"] = last.isoformat()
                with open(state_path, "w") as f:
                    json.dump(state, f)
        out.commit()
        state[table + "_last_updated_at"] = last.isoformat()
        with open(state_path, "w") as f:
            json.dump(state, f)
        total += n
    print(json.dumps({"documents": total}))


if __name__ == "__main__":
    main()
