"""Reporting for the Python driver programs (test/drivers/programs, test/dataplane/programs):
one JSON line per step on stdout, whatever the driver; a failure carries its SQLSTATE."""
import json
import traceback


def report(step, ok, value=None, sqlstate=None, error=None):
    line = {'step': step, 'ok': ok}
    if ok:
        line['value'] = value
    else:
        line['sqlstate'] = sqlstate
        line['error'] = error
    print(json.dumps(line, default=str), flush=True)


def sqlstate_of(e):
    # asyncpg: .sqlstate; psycopg 3: .sqlstate; psycopg2: .pgcode; SQLAlchemy wraps in .orig
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
    """Runs a synchronous step; True when it succeeded. `after_error` (a rollback) lets the
    next step start clean."""
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
