"""What gunicorn's preload_app asks of the code built before the fork (deploy/gunicorn.conf.py): no worker
shares a database connection with the master or with another worker."""
from __future__ import annotations

import os

from sqlalchemy import text

from shared.database import close_pools, make_engine


def test_close_pools_closes_every_pooled_connection(identity_db):
    engines = [make_engine(identity_db), make_engine(identity_db, autocommit=True)]
    for engine in engines:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    assert [engine.pool.checkedin() for engine in engines] == [1, 1]

    close_pools()

    assert [engine.pool.checkedin() for engine in engines] == [0, 0]
    with engines[0].connect() as conn:  # and the engine connects again when next used
        assert conn.execute(text("SELECT 1")).scalar() == 1
    for engine in engines:
        engine.dispose()


def test_a_forked_child_leaves_the_parents_connections_alone(identity_db):
    engine = make_engine(identity_db)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: it must not find the parent's connection in its pool
        try:
            inherited = engine.pool.checkedin()
            with engine.connect() as conn:
                answer = conn.execute(text("SELECT 2")).scalar()
            os.write(write, f"{inherited} {answer}".encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        reported = pipe.read()
    os.waitpid(pid, 0)

    assert reported == "0 2"
    with engine.connect() as conn:  # the parent's own connection still works
        assert conn.execute(text("SELECT 3")).scalar() == 3
    engine.dispose()
