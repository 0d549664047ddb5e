"""Children that end in various ways, and parents that reap them in various
ways (or not). Prints `parent P child C` for each child, then acts.

usage: children.py MODE [SECONDS]
  late      child exits 77; parent reaps it with waitpid after SECONDS
  killed    child is killed by SIGKILL; parent reaps after SECONDS
  ignore    parent sets SIGCHLD to SIG_IGN: the kernel reaps the child
  nocldwait parent sets SA_NOCLDWAIT through a SIGCHLD handler
  orphan    parent exits after SECONDS without reaping (the child is
            reparented to the subreaper above it)
  peek      parent peeks with waitid(WNOWAIT), then reaps after SECONDS
  other     parent waits for a different child that never exits
  hostile   child renames itself with control bytes, then exits
  never     parent never reaps; sleeps SECONDS and execs `sleep` so its
            children stay zombies (the test kills it)
  stopped   parent stops itself (SIGSTOP) right after its child exits
  popen     parent starts `true` with subprocess.Popen and never polls it
  leak      parent leaks a child every SECONDS, eight in all, never reaping
  sigchld-once
            parent reaps in its SIGCHLD handler with one waitpid per signal;
            four children exit while SIGCHLD is blocked, so one signal
            stands for four and three stay zombies
  reap-then-block-wait4, reap-then-block-waitid, reap-then-block-threads
            parent reaps 20 children by pid (prints `reaped P...`), leaks
            one, then blocks for SECONDS in wait4(W) (or waitid(P_PID, W)),
            W a live child (prints `waiting W...`); with `threads`, two
            threads block, one in wait4 and one in waitid, for two children
  leak-then-poll
            parent leaks a child, then on SIGUSR1 polls another, live child
            with waitpid(W, WNOHANG) (prints `polled W`) and sleeps SECONDS
  own-cgroup
            child moves itself into the cgroup v2 directory given as the
            third argument, then exits 3; parent reaps it after SECONDS
"""
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time

mode = sys.argv[1]
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
libc = ctypes.CDLL(None, use_errno=True)


def spawn(child_action):
    pid = os.fork()
    if pid == 0:
        try:
            child_action()
        finally:
            os._exit(0)
    print(f"parent {os.getpid()} child {pid}", flush=True)
    return pid


def exit_with(code):
    return lambda: os._exit(code)


if mode == "late":
    pid = spawn(exit_with(77))
    time.sleep(seconds)
    os.waitpid(pid, 0)
    time.sleep(0.5)
elif mode == "killed":
    pid = spawn(lambda: os.kill(os.getpid(), signal.SIGKILL))
    time.sleep(seconds)
    os.waitpid(pid, 0)
    time.sleep(0.5)
elif mode == "ignore":
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    spawn(exit_with(5))
    time.sleep(seconds)
elif mode == "nocldwait":
    # A handler with SA_NOCLDWAIT: children are reaped by the kernel.
    SA_NOCLDWAIT = 2

    # glibc's struct sigaction on Linux (not the kernel's k_sigaction).
    class Sigaction(ctypes.Structure):
        _fields_ = [
            ("handler", ctypes.c_void_p),
            ("mask", ctypes.c_ulong * 16),
            ("flags", ctypes.c_int),
            ("restorer", ctypes.c_void_p),
        ]

    act = Sigaction()
    act.handler = 0  # SIG_DFL
    act.flags = SA_NOCLDWAIT
    if libc.sigaction(signal.SIGCHLD, ctypes.byref(act), None) != 0:
        sys.exit("sigaction failed")
    spawn(exit_with(6))
    time.sleep(seconds)
elif mode == "orphan":
    spawn(exit_with(9))
    time.sleep(seconds)
    os._exit(0)
elif mode == "peek":
    pid = spawn(exit_with(4))
    time.sleep(0.2)
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    time.sleep(seconds)
    os.waitpid(pid, 0)
    time.sleep(0.5)
elif mode == "other":
    sleeper = os.fork()
    if sleeper == 0:
        time.sleep(seconds + 5)
        os._exit(0)
    spawn(exit_with(0))
    print(f"sleeper {sleeper}", flush=True)
    # Blocks in wait for the sleeper only; the other child stays a zombie.
    signal.alarm(int(seconds) + 1)
    signal.signal(signal.SIGALRM, lambda *_: os._exit(0))
    os.waitpid(sleeper, 0)
elif mode == "hostile":
    PR_SET_NAME = 15

    def rename_and_exit():
        libc.prctl(PR_SET_NAME, ctypes.c_char_p(b"\x1b[31mev\nil\x07\xff\xfe"), 0, 0, 0)
        os._exit(0)

    pid = spawn(rename_and_exit)
    time.sleep(seconds)
    os.waitpid(pid, 0)
elif mode == "never":
    for _ in range(3):
        spawn(exit_with(0))
    time.sleep(seconds)
    os.execvp("sleep", ["sleep", "600"])
elif mode == "stopped":
    spawn(exit_with(0))
    time.sleep(0.2)
    os.kill(os.getpid(), signal.SIGSTOP)
    time.sleep(seconds)
elif mode == "popen":
    proc = subprocess.Popen(["true"])
    print(f"parent {os.getpid()} child {proc.pid}", flush=True)
    time.sleep(seconds)
    proc.wait()
    time.sleep(0.5)
elif mode == "leak":
    for _ in range(8):
        spawn(exit_with(0))
        time.sleep(seconds)
    time.sleep(60)
elif mode == "sigchld-once":
    signal.signal(signal.SIGCHLD, lambda signum, frame: os.waitpid(-1, os.WNOHANG))
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])
    for _ in range(4):
        spawn(exit_with(0))
    time.sleep(0.5)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGCHLD])
    time.sleep(seconds)
elif mode.startswith("reap-then-block-"):
    how = mode.removeprefix("reap-then-block-")
    reaped = []
    for _ in range(20):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        reaped.append(pid)
    print("reaped " + " ".join(map(str, reaped)), flush=True)
    leaked = spawn(exit_with(0))
    sleepers = []
    for _ in range(2 if how == "threads" else 1):
        sleeper = os.fork()
        if sleeper == 0:
            time.sleep(seconds)
            os._exit(0)
        sleepers.append(sleeper)
    print("waiting " + " ".join(map(str, sleepers)), flush=True)
    if how == "wait4":
        os.waitpid(sleepers[0], 0)
    elif how == "waitid":
        os.waitid(os.P_PID, sleepers[0], os.WEXITED)
    else:
        threads = [
            threading.Thread(target=os.waitpid, args=(sleepers[0], 0)),
            threading.Thread(target=os.waitid, args=(os.P_PID, sleepers[1], os.WEXITED)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    os.waitpid(leaked, 0)
elif mode == "leak-then-poll":
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
    leaked = spawn(exit_with(0))
    sleeper = os.fork()
    if sleeper == 0:
        time.sleep(seconds + 30)
        os._exit(0)
    signal.sigwait([signal.SIGUSR1])
    os.waitpid(sleeper, os.WNOHANG)
    print(f"polled {sleeper}", flush=True)
    time.sleep(seconds)
    os.kill(sleeper, signal.SIGKILL)
    os.waitpid(sleeper, 0)
    os.waitpid(leaked, 0)
elif mode == "own-cgroup":
    procs = os.path.join(sys.argv[3], "cgroup.procs")

    def move_and_exit():
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
        os._exit(3)

    pid = spawn(move_and_exit)
    time.sleep(seconds)
    os.waitpid(pid, 0)
else:
    sys.exit(f"unknown mode {mode}")
