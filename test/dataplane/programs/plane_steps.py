"""Shared by the data-plane driver programs: their arguments; reporting is step_report's
(test/drivers/programs/step_report.py, one JSON line per step on stdout).

Arguments: port, user, password, database. The user is a principal whose rows a policy
`owner = $auth.username` picks; 'carol' is an owner none of them is.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'drivers', 'programs'))

from step_report import failed, report, run, run_async, sqlstate_of  # noqa: E402,F401 - re-exported to the programs

PORT = int(sys.argv[1])
USER = sys.argv[2]
PASSWORD = sys.argv[3]
DATABASE = sys.argv[4]
HOST = '127.0.0.1'
