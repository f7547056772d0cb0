"""psycopg 3 (Debian's python3-psycopg, python3-psycopg-pool) against portcullis, default settings."""
import datetime
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import psycopg  # noqa: E402
import psycopg_pool  # noqa: E402

from steps import DATABASE, HOST, PASSWORD, PORT, SHOWS, run  # noqa: E402

UTC = datetime.timezone.utc


def conninfo(user='admin', password=PASSWORD):
    return psycopg.conninfo.make_conninfo(host=HOST, port=PORT, user=user, password=password, dbname=DATABASE)


def typed(row, keys):
    return {k: [type(row[k]).__name__, row[k]] for k in keys}


def main():
    def wrong_password():
        psycopg.connect(conninfo('admin', 'not the password')).close()
        return 'logged in'

    run('wrong_password', wrong_password)

    conn = None

    def connect():
        nonlocal conn
        conn = psycopg.connect(conninfo(), row_factory=psycopg.rows.dict_row)
        return conn.execute('SELECT current_user').fetchone()['current_user']

    if not run('connect', connect):
        return

    def rollback():
        conn.rollback()

    def show_auth():
        rows = conn.execute('SHOW AUTH').fetchall()
        conn.commit()
        return [[r['variable'], r['value']] for r in rows]

    run('show_auth', show_auth, rollback)

    def create_user():
        # psycopg 3 binds a small int as int2 and an aware datetime as timestamptz.
        cur = conn.execute(
            'CREATE USER drv_psycopg WITH PASSWORD %s CONNECTION LIMIT %s VALID UNTIL %s',
            ('drv pw', 7, datetime.datetime(2099, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)),
        )
        conn.commit()
        return cur.statusmessage

    run('create_user', create_user, rollback)

    def user_row():
        rows = conn.execute('SHOW USERS').fetchall()
        conn.commit()
        r = next(r for r in rows if r['name'] == 'drv_psycopg')
        return typed(r, ('id', 'login', 'valid_until', 'connection_limit'))

    run('user_row', user_row, rollback)

    def user_row_binary():
        with conn.cursor(binary=True) as cur:
            rows = cur.execute('SHOW USERS').fetchall()
        conn.commit()
        r = next(r for r in rows if r['name'] == 'drv_psycopg')
        return typed(r, ('id', 'login', 'valid_until', 'connection_limit'))

    run('user_row_binary', user_row_binary, rollback)

    def binary_params():
        # %b: binary parameters of the types psycopg 3 picks for Python values.
        r = conn.execute(
            'SELECT %b::text AS small, %b::text AS big, %b::text AS f, %b::text AS ok, %b::text AS at',
            (7, 2 ** 40, 1.5, True, datetime.datetime(2099, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ).fetchone()
        conn.commit()
        return r

    run('binary_params', binary_params, rollback)

    for sql in SHOWS:
        def show(sql=sql):
            counts = []
            for _ in range(10):
                counts.append(len(conn.execute(sql, prepare=True).fetchall()))
            conn.commit()
            return counts

        run('show:' + sql, show, rollback)

    def ddl_after_prepared():
        # Once it has prepared statements, psycopg 3 follows a DROP with DEALLOCATE ALL.
        conn.execute("CREATE USER drv_psycopg_ddl")
        conn.commit()
        cur = conn.execute('DROP USER drv_psycopg_ddl')
        tag = cur.statusmessage
        conn.commit()
        return [tag, conn.execute('SELECT current_user').fetchone()['current_user']]

    run('ddl_after_prepared', ddl_after_prepared, rollback)

    def pool_cycle():
        with psycopg_pool.ConnectionPool(conninfo(), min_size=1, max_size=2, open=True) as pool:
            n = 0
            for _ in range(100):
                with pool.connection() as con:
                    con.execute('SELECT current_user').fetchone()
                    n += 1
            return n

    run('pool', pool_cycle)
    conn.close()


main()
