"""asyncpg (Debian's python3-asyncpg) on a data plane, default settings: its type
introspection of an enum (and an array of it) and of jsonb with a codec set, binary results
and parameters, reading and writing rows under the policy `owner = $auth.username`."""
import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import asyncpg  # noqa: E402

from plane_steps import DATABASE, HOST, PASSWORD, PORT, USER, run_async  # noqa: E402


async def main():
    c = None

    async def connect():
        nonlocal c
        c = await asyncpg.connect(host=HOST, port=PORT, user=USER, password=PASSWORD, database=DATABASE)
        return await c.fetchval('SELECT count(*) FROM orders')

    if not await run_async('connect', connect):
        return

    async def read():
        # order_status is no built-in type: asyncpg looks it up in pg_type (its introspection
        # query, prepared and run with binary results) before it can decode the rows.
        rows = await c.fetch('SELECT owner, status, data, amount FROM orders ORDER BY id')
        return [[r['owner'], r['status'], r['data'], str(r['amount'])] for r in rows]

    await run_async('read', read)

    async def codec():
        await c.set_type_codec('jsonb', encoder=json.dumps, decoder=json.loads, schema='pg_catalog')
        return [type(v).__name__ for v in await c.fetchrow("SELECT data, '{\"a\": [1]}'::jsonb FROM orders LIMIT 1")]

    await run_async('jsonb_codec', codec)

    async def insert_own():
        # Both parameters are of types asyncpg introspected: the enum and jsonb.
        return await c.execute(
            'INSERT INTO orders (owner, status, data, amount) VALUES ($1, $2, $3, $4)', USER, 'shipped', {'via': 'asyncpg', 'n': [1, 2]}, 2
        )

    await run_async('insert_own', insert_own)

    async def insert_other():
        return await c.execute('INSERT INTO orders (owner, status, data) VALUES ($1, $2, $3)', 'carol', 'new', {})

    await run_async('insert_other', insert_other)

    async def enum_array():
        # An array of the enum: another type asyncpg must introspect (the element type first).
        return await c.fetchval('SELECT array_agg(status ORDER BY id) FROM orders')

    await run_async('enum_array', enum_array)

    async def update_all():
        return await c.execute('UPDATE orders SET amount = amount + 1')

    await run_async('update_all', update_all)

    async def read_after():
        rows = await c.fetch('SELECT owner, status, data, amount FROM orders WHERE status = ANY($1::order_status[]) ORDER BY id', ['new', 'paid', 'shipped'])
        return [[r['owner'], r['status'], r['data'], str(r['amount'])] for r in rows]

    await run_async('read_after', read_after)
    await c.close()


asyncio.run(main())
