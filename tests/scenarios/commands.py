"""Parents whose children run commands, for what a report says of the
child's command line. Prints `parent P child C` for the child left a
zombie, then sleeps SECONDS and exits (its zombie goes with it).

usage: commands.py MODE SECONDS
  popen    runs three commands through subprocess.Popen and waits for
           the first two only: `echo leaked third` stays a zombie
  hostile  leaks a child whose argv has control bytes, bytes that are not
           UTF-8, and 100 KB in all
  fork     leaks a child that never execs (os.fork, then _exit): it runs
           this very command
"""
import os
import subprocess
import sys
import time

mode, seconds = sys.argv[1], float(sys.argv[2])
if mode == "popen":
    waited = [
        subprocess.Popen(["true", "first"]),
        subprocess.Popen(["sleep", "0"]),
    ]
    leaked = subprocess.Popen(["echo", "leaked", "third"], stdout=subprocess.DEVNULL)
    for p in waited:
        p.wait()
    child = leaked.pid
elif mode == "hostile":
    args = [b"true", b"\x1b[2J\nevil\xff\xfe", b"x" * (100 * 1024)]
    # Kept: a Popen dropped at once polls its child as it goes, and reaps
    # it if /bin/true was quick enough to have exited already.
    leaked = subprocess.Popen(args, executable="/bin/true")
    child = leaked.pid
elif mode == "fork":
    child = os.fork()
    if child == 0:
        os._exit(0)
else:
    sys.exit(f"unknown mode {mode}")
print(f"parent {os.getpid()} child {child}", flush=True)
time.sleep(seconds)
