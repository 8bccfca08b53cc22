"""rldt.tune_malloc_for_training and its environment switches (include/rldt/util/malloc_tuning.hpp).
Each case runs in a fresh interpreter: the tuning happens once per process."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PROBE = """
import ctypes, os, rldt
if os.environ.get("PROBE_BUILD_CRITIC"):  # a training component applies the tuning by itself
    rldt.CriticEnsemble(rldt.CriticConfig(obs_dim=3, action_dim=1, act_steps=1, hidden=[8]), seed=0)
else:
    print(rldt.tune_malloc_for_training())
libc = ctypes.CDLL("libc.so.6")
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
before = libc.mallinfo2().hblkhd
p = libc.malloc(24 << 20)
ctypes.memset(p, 1, 24 << 20)
print(libc.mallinfo2().hblkhd > before)  # True: the 24 MB block was mmapped
libc.free(p)
"""


def probe(**env):
    e = dict(os.environ)
    for k in ("PROBE_BUILD_CRITIC", "RLDT_MALLOC_TUNING", "GLIBC_TUNABLES", "MALLOC_TRIM_THRESHOLD_",
              "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_"):
        e.pop(k, None)
    e.update(env)
    e["PYTHONPATH"] = os.path.join(REPO, "python") + os.pathsep + e.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", PROBE], env=e, capture_output=True, text=True, timeout=120)


def test_applied_by_default_and_keeps_large_blocks_in_the_heap():
    r = probe()
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["applied", "False"]


def test_switched_off_and_left_alone():
    r = probe(RLDT_MALLOC_TUNING="0")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["disabled", "True"]  # glibc's defaults: a 24 MB block is mmapped


def test_user_tunables_win():
    r = probe(GLIBC_TUNABLES="glibc.malloc.trim_threshold=1048576")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == "user_tuned"
    assert probe(MALLOC_TOP_PAD_="1048576").stdout.split()[0] == "user_tuned"


def test_a_bad_value_names_the_variable():
    r = probe(RLDT_MALLOC_TUNING="yes")
    assert r.returncode != 0
    assert "RLDT_MALLOC_TUNING" in r.stderr and "'yes'" in r.stderr


def test_explicit_on():
    r = probe(RLDT_MALLOC_TUNING="1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["applied", "False"]


def test_training_components_apply_it_themselves():
    r = probe(PROBE_BUILD_CRITIC="1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False"]  # the 24 MB block stayed in the heap
    off = probe(PROBE_BUILD_CRITIC="1", RLDT_MALLOC_TUNING="0")
    assert off.returncode == 0, off.stderr
    assert off.stdout.split() == ["True"]
