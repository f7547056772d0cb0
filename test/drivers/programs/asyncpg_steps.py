"""asyncpg (Debian's python3-asyncpg) against portcullis, with default settings."""
import asyncio
import datetime
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import asyncpg  # noqa: E402

from steps import DATABASE, HOST, PASSWORD, PORT, SHOWS, run_async  # noqa: E402

UTC = datetime.timezone.utc


def connect(user='admin', password=PASSWORD):
    return asyncpg.connect(host=HOST, port=PORT, user=user, password=password, database=DATABASE)


async def main():
    async def wrong_password():
        u = await connect('admin', 'not the password')
        await u.close()
        return 'logged in'

    await run_async('wrong_password', wrong_password)

    c = None

    async def do_connect():
        nonlocal c
        c = await connect()
        return await c.fetchval('SELECT current_user')

    if not await run_async('connect', do_connect):
        return

    async def show_auth():
        return [list(r) for r in await c.fetch('SHOW AUTH')]

    await run_async('show_auth', show_auth)

    async def create_user():
        # asyncpg binds every parameter in binary: int4 and timestamptz here.
        return await c.execute(
            'CREATE USER drv_asyncpg WITH PASSWORD $1 CONNECTION LIMIT $2 VALID UNTIL $3',
            'drv pw', 7, datetime.datetime(2099, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        )

    await run_async('create_user', create_user)

    async def user_row():
        rows = await c.fetch('SHOW USERS')
        r = next(r for r in rows if r['name'] == 'drv_asyncpg')
        return {k: [type(r[k]).__name__, r[k]] for k in ('id', 'login', 'valid_until', 'connection_limit', 'created_at')}

    await run_async('user_row', user_row)

    async def select_params():
        r = await c.fetchrow('SELECT $1::int4 AS i4, $2::int8 AS i8, $3::bool AS b, $4::text AS t', 42, 2 ** 40, True, 'h\u00e9llo')
        return {k: [type(r[k]).__name__, r[k]] for k in r.keys()}

    await run_async('select_params', select_params)

    for sql in SHOWS:
        async def show(sql=sql):
            stmt = await c.prepare(sql)
            counts = [len(await stmt.fetch()) for _ in range(10)]
            return counts

        await run_async('show:' + sql, show)

    async def pool_cycle():
        pool = await asyncpg.create_pool(host=HOST, port=PORT, user='admin', password=PASSWORD, database=DATABASE, min_size=1, max_size=2)
        try:
            n = 0
            for _ in range(100):
                async with pool.acquire() as con:
                    await con.fetchval('SELECT current_user')
                    n += 1
            return n
        finally:
            await pool.close()

    await run_async('pool', pool_cycle)

    async def login_created():
        u = await connect('drv_asyncpg', 'drv pw')
        try:
            return await u.fetchval('SELECT current_user')
        finally:
            await u.close()

    await run_async('login_created_user', login_created)

    async def drop_user():
        return await c.execute('DROP USER drv_asyncpg')

    await run_async('drop_user', drop_user)
    await c.close()



asyncio.run(main())
