"""Shared by the data-plane driver programs: arguments and one JSON line per step on stdout.

Arguments: port, user, password, database. The user is a principal whose rows a policy
`owner = $auth.username` picks; 'carol' is an owner none of them is.
"""
import json
import sys
import traceback

PORT = int(sys.argv[1])
USER = sys.argv[2]
PASSWORD = sys.argv[3]
DATABASE = sys.argv[4]
HOST = '127.0.0.1'


def report(step, ok, value=None, sqlstate=None, error=None):
    line = {'step': step, 'ok': ok}
    if ok:
        line['value'] = value
    else:
        line['sqlstate'] = sqlstate
        line['error'] = error
    print(json.dumps(line, default=str), flush=True)


def sqlstate_of(e):
    # asyncpg: .sqlstate; psycopg2: .pgcode; SQLAlchemy wraps the driver's error in .orig
    for obj in (e, getattr(e, 'orig', None)):
        if obj is None:
            continue
        for attr in ('sqlstate', 'pgcode'):
            v = getattr(obj, attr, None)
            if v:
                return v
    return None


def failed(step, e):
    detail = ''.join(traceback.format_exception_only(type(e), e)).strip()
    report(step, False, sqlstate=sqlstate_of(e), error=detail)


def run(step, fn, after_error=None):
    """Runs a step; True when it succeeded. `after_error` (a rollback) lets the next step start clean."""
    try:
        report(step, True, fn())
        return True
    except Exception as e:  # noqa: BLE001 - every failure is reported, the program goes on
        failed(step, e)
        if after_error is not None:
            try:
                after_error()
            except Exception:  # noqa: BLE001
                pass
        return False


async def run_async(step, fn):
    try:
        report(step, True, await fn())
        return True
    except Exception as e:  # noqa: BLE001
        failed(step, e)
        return False
