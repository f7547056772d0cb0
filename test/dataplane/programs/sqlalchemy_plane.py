"""SQLAlchemy 1.4 (Debian's python3-sqlalchemy, psycopg2) on a data plane, default settings:
create_engine, reflect `orders` (its enum, jsonb and primary key), then an ORM session that
reads and writes rows under the policy `owner = $auth.username`."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import sqlalchemy  # noqa: E402
from sqlalchemy import MetaData, Table, func, inspect, text, update  # noqa: E402
from sqlalchemy.orm import Session, registry  # noqa: E402

from plane_steps import DATABASE, HOST, PASSWORD, PORT, USER, run  # noqa: E402

engine = sqlalchemy.create_engine(
    sqlalchemy.engine.URL.create('postgresql', username=USER, password=PASSWORD, host=HOST, port=PORT, database=DATABASE)
)


def connect():
    # The dialect asks current_schema() at its first connection: the schema it reflects and
    # lists tables of when none is named.
    with engine.connect() as c:
        return {
            'version': sqlalchemy.__version__.split('.')[:2],
            'current_user': c.execute(text('SELECT current_user')).scalar(),
            'default_schema': engine.dialect.default_schema_name,
        }


if not run('connect', connect):
    sys.exit(0)

md = MetaData()
orders = None


def reflect():
    global orders
    orders = Table('orders', md, autoload_with=engine)
    return {
        'columns': [[c.name, type(c.type).__name__, c.nullable] for c in orders.columns],
        'enum': list(orders.c.status.type.enums),
        'primary_key': [c.name for c in orders.primary_key.columns],
    }


if not run('reflect', reflect):
    sys.exit(0)


def inspector():
    i = inspect(engine)
    return {
        'tables': i.get_table_names(),
        'pk': i.get_pk_constraint('orders')['constrained_columns'],
        'enums': [[e['name'], e['labels']] for e in i.get_enums()],
    }


run('inspect', inspector)


class Order:
    pass


registry().map_imperatively(Order, orders)
session = Session(engine)


def rows():
    return [[o.owner, o.status, o.data, str(o.amount)] for o in session.query(Order).order_by(Order.id)]


run('read', rows, session.rollback)


def insert_own():
    session.add(Order(owner=USER, status='paid', data={'via': 'sqlalchemy', 'n': [1, 2]}, amount=2))
    session.commit()
    return session.query(func.count(Order.id)).scalar()


run('insert_own', insert_own, session.rollback)


def insert_other():
    session.add(Order(owner='carol', status='new', data={}, amount=1))
    session.commit()
    return 'inserted'


run('insert_other', insert_other, session.rollback)


def update_all():
    # Only the rows the policy shows are updated; the count is what PostgreSQL said.
    n = session.execute(update(orders).values(amount=orders.c.amount + 1)).rowcount
    session.commit()
    return n


run('update_all', update_all, session.rollback)
run('read_after', rows, session.rollback)
session.close()
engine.dispose()
