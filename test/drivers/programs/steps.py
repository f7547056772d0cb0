"""Shared by the Python driver programs: their arguments; reporting is step_report's."""
import json
import sys

from step_report import failed, report, run, run_async, sqlstate_of  # noqa: F401 - re-exported to the programs

PORT = int(sys.argv[1])
PASSWORD = sys.argv[2]
SHOWS = json.loads(sys.argv[3])
HOST = '127.0.0.1'
DATABASE = 'default'
