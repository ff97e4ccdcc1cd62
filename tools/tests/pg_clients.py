"""Drives a running omen-serve with psycopg 3 and pgvector-python, as a
pgvector user would. Run by tools/tests/serve_e2e.rs, which starts the
servers and passes their ports:

    python3 pg_clients.py READONLY_PORT WRITABLE_PORT AUTH_PORT DIM

Each check prints one line; the last line is 'N passed, M failed'. Exit
status 1 if anything failed.
"""

import socket
import struct
import sys

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

ro_port, rw_port, auth_port, dim = (int(a) for a in sys.argv[1:5])
results = []


def check(name):
    def wrap(fn):
        try:
            fn()
            results.append((name, None))
            print(f"ok   {name}")
        except Exception as e:  # noqa: BLE001 - report every failure
            results.append((name, e))
            print(f"FAIL {name}: {type(e).__name__}: {e}")
        return fn
    return wrap


def connect(port, **kw):
    conn = psycopg.connect(host="127.0.0.1", port=port, user="omen", dbname="omen", **kw)
    register_vector(conn)
    return conn


def expect_error(conn, sql, params, sqlstate):
    try:
        conn.execute(sql, params)
    except psycopg.Error as e:
        assert e.sqlstate == sqlstate, f"{sql}: got {e.sqlstate} {e}, expected {sqlstate}"
        return str(e)
    raise AssertionError(f"{sql}: no error, expected {sqlstate}")


rng = np.random.default_rng(5)
q = rng.standard_normal(dim).astype(np.float32)
SEARCH = "SELECT id, embedding <-> %s AS dist FROM items ORDER BY embedding <-> %s LIMIT 10"


@check("search: text and binary parameters agree; distances are pgvector's <->")
def _():
    with connect(ro_port, autocommit=True) as conn:
        text = conn.execute(SEARCH, (q, q)).fetchall()
        binary = conn.execute(SEARCH, (q, q), binary=True).fetchall()
        assert len(text) == 10, text
        assert [r[0] for r in text] == [r[0] for r in binary]
        dists = [r[1] for r in text]
        assert dists == sorted(dists), dists
        ids = [r[0] for r in text]
        in_list = ",".join(str(i) for i in ids)
        stored = dict(conn.execute(f"SELECT id, embedding FROM items WHERE id IN ({in_list})").fetchall())
        for i, d in text:
            exact = float(np.linalg.norm(np.asarray(stored[i].to_list(), dtype=np.float64) - q.astype(np.float64)))
            assert abs(exact - d) < 1e-4, (i, d, exact)


@check("transactions (psycopg's default) and settings")
def _():
    with connect(ro_port) as conn:  # not autocommit: psycopg sends BEGIN
        conn.execute("SET hnsw.ef_search = 120")
        assert conn.execute("SHOW omen.ef_search").fetchone()[0] == "120"
        assert conn.execute("SELECT count(*) FROM items").fetchone()[0] > 0
        conn.commit()


@check("a malformed query, then a good one on the same connection")
def _():
    with connect(ro_port, autocommit=True) as conn:
        expect_error(conn, "SELEC id FROM items", None, "42601")
        msg = expect_error(conn, "SELECT id FROM items ORDER BY id LIMIT 3", None, "0A000")
        assert "<->" in msg, msg
        assert len(conn.execute(SEARCH, (q, q)).fetchall()) == 10


@check("bad vectors: wrong dimension, NaN; the connection keeps working")
def _():
    with connect(ro_port, autocommit=True) as conn:
        expect_error(conn, SEARCH, (q[:-1], q[:-1]), "22000")
        bad = q.copy()
        bad[0] = np.nan
        expect_error(conn, SEARCH, (bad, bad), "22023")
        expect_error(conn, "SELECT id FROM items ORDER BY embedding <-> %s::vector LIMIT 1", ("[1,2,x]",), "22P02")
        assert len(conn.execute(SEARCH, (q, q), binary=True).fetchall()) == 10


@check("writes are rejected by a read-only server with 25006")
def _():
    with connect(ro_port, autocommit=True) as conn:
        expect_error(conn, "INSERT INTO items (id, embedding) VALUES (%s, %s)", (10**9, q), "25006")
        expect_error(conn, "CREATE TABLE t (id bigint PRIMARY KEY, embedding vector(3))", None, "25006")


@check("an oversized query gets 54000; the connection keeps working")
def _():
    with connect(ro_port, autocommit=True) as conn:
        expect_error(conn, "SELECT 1 " + " " * (17 << 20), None, "54000")
        assert conn.execute("SELECT 1").fetchone()[0] == 1


@check("a client that disconnects mid-message does not disturb others")
def _():
    with connect(ro_port, autocommit=True) as other:
        s = socket.create_connection(("127.0.0.1", ro_port))
        params = b"user\0omen\0database\0omen\0\0"
        s.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
        s.recv(4096)  # authentication ok, parameters, ready for query
        query = b"SELECT id FROM items ORDER BY embedding <-> '[1]' LIMIT 1\0"
        s.sendall(b"Q" + struct.pack("!i", 4 + len(query)) + query[:10])  # half a message
        s.close()
        assert len(other.execute(SEARCH, (q, q)).fetchall()) == 10


@check("create, load, search and filtered search on a writable server")
def _():
    with connect(rw_port, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE docs (id bigint PRIMARY KEY, embedding vector({dim}), category text, price float8)")
        conn.execute("CREATE INDEX ON docs USING hnsw (embedding vector_l2_ops) WITH (m = 16, ef_construction = 64)")
        vecs = rng.standard_normal((50, dim)).astype(np.float32)
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO docs (id, embedding, category, price) VALUES (%s, %s, %s, %s)",
                            [(i, vecs[i], "ab"[i % 2], float(i)) for i in range(50)])
        assert conn.execute("SELECT count(*) FROM docs").fetchone()[0] == 50
        more = rng.standard_normal((40, dim)).astype(np.float32)
        with conn.cursor() as cur:
            with cur.copy("COPY docs (id, embedding, category, price) FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "vector", "text", "float8"])
                for i in range(20):
                    copy.write_row((100 + i, more[i], "a", 1.5))
            with cur.copy("COPY docs (id, embedding) FROM STDIN") as copy:
                for i in range(20, 40):
                    copy.write_row((100 + i, more[i]))
        assert conn.execute("SELECT count(*) FROM docs").fetchone()[0] == 90
        assert conn.execute("SELECT embedding, category, price FROM docs WHERE id = 105").fetchone()[1:] == ("a", 1.5)
        got = conn.execute("SELECT embedding FROM docs WHERE id = 125").fetchone()[0]
        assert np.allclose(got.to_numpy(), more[25]), got
        rows = conn.execute("SELECT id, embedding <-> %s FROM docs ORDER BY embedding <-> %s LIMIT 5", (vecs[7], vecs[7])).fetchall()
        assert rows[0][0] == 7 and rows[0][1] < 1e-6, rows
        conn.execute("UPDATE docs SET category = 'c' WHERE id = 7")
        assert conn.execute("SELECT category FROM docs WHERE id = 7").fetchone()[0] == "c"
        conn.execute("DELETE FROM docs WHERE id = 7")
        rows = conn.execute("SELECT id FROM docs ORDER BY embedding <-> %s LIMIT 1", (vecs[7],)).fetchall()
        assert rows[0][0] != 7
        # Filtered search: the engine's, with the WHERE pushed down.
        rows = conn.execute(
            "SELECT id, category, price FROM docs WHERE category = 'a' AND price < %s ORDER BY embedding <-> %s LIMIT 5",
            (40.0, vecs[3])).fetchall()
        assert len(rows) == 5 and all(r[1] == "a" and r[2] < 40 for r in rows), rows
        candidates = [(i, vecs[i]) for i in range(0, 40, 2)] + [(100 + i, more[i]) for i in range(20)]
        exact = sorted((float(np.linalg.norm(v - vecs[3])), i) for i, v in candidates)
        assert [r[0] for r in rows] == [i for _, i in exact[:5]], (rows, exact[:5])
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN SELECT id FROM docs WHERE category = 'a' ORDER BY embedding <-> %s LIMIT 5", (vecs[3],)).fetchall())
        assert "Filter: category = 'a'" in plan and "strategy" in plan.lower(), plan
        conn.execute("DROP TABLE docs")


@check("authentication: a wrong password fails, the right one works")
def _():
    try:
        psycopg.connect(host="127.0.0.1", port=auth_port, user="alice", password="wrong", dbname="omen").close()
        raise AssertionError("wrong password accepted")
    except psycopg.OperationalError as e:
        assert "password" in str(e).lower() or "28P01" in str(e), e
    with psycopg.connect(host="127.0.0.1", port=auth_port, user="alice", password="s3cret", dbname="omen") as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1


failed = sum(1 for _, e in results if e is not None)
print(f"{len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
