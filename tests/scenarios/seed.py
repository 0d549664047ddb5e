"""The seed example: a multiprocessing child exits while its parent sleeps
without join(). At exit, multiprocessing's atexit hook finally reaps it."""
import multiprocessing
import os
import sys
import time


def work():
    pass


if __name__ == "__main__":
    multiprocessing.set_start_method("fork")
    child = multiprocessing.Process(target=work)
    child.start()
    print(f"parent {os.getpid()} child {child.pid}", flush=True)
    time.sleep(float(sys.argv[1]))
