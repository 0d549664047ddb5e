"""Run a scenario as a child subreaper and reap everything it orphans.

PID 1 on some machines never reaps orphans; without this, a scenario whose
parent exits first would leave zombies behind for good.
Usage: subreaper.py PROGRAM [ARGS...]; exits with the scenario's status.
"""
import ctypes
import os
import sys

PR_SET_CHILD_SUBREAPER = 36

libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.exit(f"prctl(PR_SET_CHILD_SUBREAPER): errno {ctypes.get_errno()}")
print(f"subreaper {os.getpid()}", flush=True)
scenario = os.fork()
if scenario == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
status = 1
while True:
    try:
        pid, wstatus = os.wait()
    except ChildProcessError:
        break
    if pid == scenario:
        status = os.waitstatus_to_exitcode(wstatus)
sys.exit(status if status >= 0 else 128 - status)
