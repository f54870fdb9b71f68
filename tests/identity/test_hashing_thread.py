"""argon2id runs on one thread per process (passwords.HashingThread): a gthread worker hashing on its
request threads keeps glibc's freed 19 MiB block once per thread, so its memory grew with GUNICORN_THREADS."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from support import ROOT

MIB = 1024 * 1024

SCRIPT = textwrap.dedent("""
    import os, sys, threading
    from pathlib import Path
    from services.identity import passwords

    def unique_memory():
        fields = dict(line.split(":", 1) for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:])
        return sum(int(fields[name].split()[0]) * 1024 for name in ("Private_Clean", "Private_Dirty"))

    stored = passwords.hash_password("correct horse battery")
    before = unique_memory()
    results = []
    threads = [threading.Thread(target=lambda: results.append(passwords.verify(stored, "correct horse battery")))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wrong = passwords.verify(stored, "wrong horse battery")
    pid = os.fork()
    if pid == 0:  # a forked worker hashes on a thread of its own (the parent's is not there)
        os._exit(0 if passwords.verify(stored, "correct horse battery") else 1)
    _, status = os.waitpid(pid, 0)
    print(results.count(True), wrong, os.waitstatus_to_exitcode(status), unique_memory() - before)
""")


def test_hashes_from_four_threads_keep_one_block_and_a_forked_child_hashes_too():
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    right, wrong, child_exit, growth = result.stdout.split()

    assert (right, wrong, child_exit) == ("4", "False", "0")
    assert int(growth) < 2 * 19 * MIB  # one argon2id block at most (four on the request threads themselves)
