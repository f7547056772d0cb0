"""psycopg2 (Debian's python3-psycopg2) against portcullis, default settings."""
import datetime
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import psycopg2  # noqa: E402
import psycopg2.extras  # noqa: E402
import psycopg2.pool  # noqa: E402

from steps import DATABASE, HOST, PASSWORD, PORT, SHOWS, run  # noqa: E402

UTC = datetime.timezone.utc
ARGS = dict(host=HOST, port=PORT, user='admin', password=PASSWORD, dbname=DATABASE)


def typed(row, keys):
    return {k: [type(row[k]).__name__, row[k]] for k in keys}


def main():
    def wrong_password():
        psycopg2.connect(**{**ARGS, 'password': 'not the password'}).close()
        return 'logged in'

    run('wrong_password', wrong_password)

    conn = None

    def connect():
        nonlocal conn
        conn = psycopg2.connect(**ARGS, cursor_factory=psycopg2.extras.RealDictCursor)
        with conn.cursor() as cur:
            cur.execute('SELECT current_user')
            return cur.fetchone()['current_user']

    if not run('connect', connect):
        return

    def rollback():
        conn.rollback()

    def query(sql, params=None):
        with conn.cursor() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall() if cur.description else cur.statusmessage
        conn.commit()
        return rows

    run('show_auth', lambda: [[r['variable'], r['value']] for r in query('SHOW AUTH')], rollback)

    # psycopg2 interpolates parameters on the client: the server sees literals.
    run('create_user', lambda: query(
        'CREATE USER drv_psycopg2 WITH PASSWORD %s CONNECTION LIMIT %s VALID UNTIL %s',
        ('drv pw', 7, datetime.datetime(2099, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)),
    ), rollback)

    def user_row():
        r = next(r for r in query('SHOW USERS') if r['name'] == 'drv_psycopg2')
        return typed(r, ('id', 'login', 'valid_until', 'connection_limit'))

    run('user_row', user_row, rollback)

    for sql in SHOWS:
        run('show:' + sql, lambda sql=sql: [len(query(sql)) for _ in range(10)], rollback)

    run('drop_user', lambda: query('DROP USER drv_psycopg2'), rollback)

    def pool_cycle():
        pool = psycopg2.pool.ThreadedConnectionPool(1, 2, **ARGS)
        try:
            n = 0
            for _ in range(100):
                con = pool.getconn()
                with con.cursor() as cur:
                    cur.execute('SELECT current_user')
                    cur.fetchone()
                pool.putconn(con)
                n += 1
            return n
        finally:
            pool.closeall()

    run('pool', pool_cycle)
    conn.close()


main()
