"""SQLAlchemy 1.4 (Debian's python3-sqlalchemy) over its default PostgreSQL driver, psycopg2."""
import datetime
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import sqlalchemy  # noqa: E402
from sqlalchemy import text  # noqa: E402

from steps import DATABASE, HOST, PASSWORD, PORT, SHOWS, run  # noqa: E402

UTC = datetime.timezone.utc


def url(password=PASSWORD):
    return sqlalchemy.engine.URL.create('postgresql', username='admin', password=password, host=HOST, port=PORT, database=DATABASE)


def main():
    def wrong_password():
        e = sqlalchemy.create_engine(url('not the password'))
        try:
            e.connect().close()
        finally:
            e.dispose()
        return 'logged in'

    run('wrong_password', wrong_password)

    # use_native_hstore=False: psycopg2's dialect otherwise looks the hstore type up in
    # pg_type on every new connection, which only a data plane can answer (0A000).
    engine = sqlalchemy.create_engine(url(), use_native_hstore=False)
    conn = None

    def connect():
        # The first connection runs the dialect's start-up queries (version, schema, ...).
        nonlocal conn
        conn = engine.connect()
        return conn.execute(text('SELECT current_user')).scalar()

    if not run('connect', connect):
        engine.dispose()
        return

    def rollback():
        conn.rollback()

    def query(sql, **params):
        with conn.begin():
            result = conn.execute(text(sql), params)
            return [dict(r._mapping) for r in result] if result.returns_rows else 'ok'

    run('show_auth', lambda: [[r['variable'], r['value']] for r in query('SHOW AUTH')], rollback)

    run('create_user', lambda: query(
        'CREATE USER drv_sqlalchemy WITH PASSWORD :pw CONNECTION LIMIT :lim VALID UNTIL :until',
        pw='drv pw', lim=7, until=datetime.datetime(2099, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
    ), rollback)

    def user_row():
        r = next(r for r in query('SHOW USERS') if r['name'] == 'drv_sqlalchemy')
        return {k: [type(r[k]).__name__, r[k]] for k in ('id', 'login', 'valid_until', 'connection_limit')}

    run('user_row', user_row, rollback)

    for sql in SHOWS:
        run('show:' + sql, lambda sql=sql: [len(query(sql)) for _ in range(10)], rollback)

    run('drop_user', lambda: query('DROP USER drv_sqlalchemy'), rollback)
    conn.close()

    def pool_cycle():
        n = 0
        for _ in range(100):
            with engine.connect() as c:
                c.execute(text('SELECT current_user')).scalar()
                n += 1
        return n

    run('pool', pool_cycle)
    engine.dispose()


main()
