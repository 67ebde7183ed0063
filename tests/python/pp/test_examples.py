"""The example programs of examples/pp (pp's own examples, pp.md §11) print the values
pp prints, and pp's print_stats table."""

import math
import re
import subprocess
import sys

import pytest

from conftest import REPO, child_env

EXAMPLES = REPO / "examples" / "pp"

ROW = re.compile(r"^ {4}[ \d]{6} \| {8}[ \d.]{6} \| {5}[ \d.]{8} \| {2}[ \d.]{11} \| \S+$")

SUMS = [(100000, 454396537), (100100, 454996777), (100200, 455898156), (100300, 456700218),
        (100400, 457603451), (100500, 458407033), (100600, 459412387), (100700, 460217613)]


def run(script, *args, timeout=180):
    r = subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True,
                       text=True, timeout=timeout, env=child_env(), cwd=str(script.parent))
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def stats(out, njobs, cores, active=0):
    """The print_stats table at the end of ``out``; returns its rows."""
    lines = out.splitlines()
    i = lines.index("Job execution statistics:")
    assert lines[i + 1] == " job count | % of all jobs | job time sum | time per job | job server"
    rows = []
    j = i + 2
    while ROW.match(lines[j]):
        rows.append([c.strip() for c in lines[j].split("|")])
        j += 1
    assert rows, lines[i:]
    assert re.fullmatch(r"Time elapsed since server creation \d+\.\d+", lines[j])
    assert re.fullmatch(r"\d+ active tasks, %d cores" % cores, lines[j + 1]), lines[j + 1]
    if active is not None:
        assert lines[j + 1].startswith("%d active" % active)
    assert lines[j + 2] == ""
    assert [r[4] for r in rows] == ["local"]
    assert int(rows[0][0]) == njobs and rows[0][1] == "100.00"
    return rows


SEED = '''
import math, shoal.pp as pp
def isprime(n):
    if n < 2: return False
    if n == 2: return True
    for i in range(2, int(math.ceil(math.sqrt(n))) + 1):
        if n % i == 0: return False
    return True
def sum_primes(n):
    return sum([x for x in range(2, n) if isprime(x)])
job_server = pp.Server(ppservers=())
print("Starting pp with", job_server.get_ncpus(), "workers")
job1 = job_server.submit(sum_primes, (100,), (isprime,), ("math",))
print("Sum of primes below 100 is", job1())
inputs = (100000, 100100, 100200, 100300, 100400, 100500, 100600, 100700)
jobs = [(i, job_server.submit(sum_primes, (i,), (isprime,), ("math",))) for i in inputs]
for i, job in jobs:
    print("Sum of primes below", i, "is", job())
job_server.print_stats()
'''


def check_sums(out):
    assert "Sum of primes below 100 is 1060\n" in out
    for n, total in SUMS:
        assert "Sum of primes below %d is %d\n" % (n, total) in out


def test_seed_program_from_the_issue(tmp_path):
    script = tmp_path / "seed.py"
    script.write_text(SEED)
    out = run(script)
    from shoal.cluster import _usable_cpus
    assert out.startswith("Starting pp with %d workers\n" % _usable_cpus())
    check_sums(out)
    stats(out, njobs=9, cores=_usable_cpus())


@pytest.mark.parametrize("ncpus", [1, 2])
def test_sum_primes(ncpus):
    out = run(EXAMPLES / "sum_primes.py", ncpus)
    check_sums(out)
    stats(out, njobs=9, cores=ncpus)


def test_sum_primes_functor():
    out = run(EXAMPLES / "sum_primes_functor.py", 2)
    check_sums(out)
    stats(out, njobs=9, cores=2)


def test_auto_diff_bound_method_and_user_classes():
    out = run(EXAMPLES / "auto_diff.py", 2)
    lines = [l for l in out.splitlines() if l.startswith("t_log(")]
    assert len(lines) == 32
    assert lines[0] == "t_log(1.000000) = 0.000000, t_log'(1.000000) = 1.000000"
    assert lines[1] == "t_log(1.031250) = 0.030772, t_log'(1.031250) = 0.969697"
    assert lines[16] == "t_log(1.500000) = 0.405465, t_log'(1.500000) = 0.666667"
    assert lines[31] == "t_log(1.968750) = 0.677399, t_log'(1.968750) = 0.507937"
    stats(out, njobs=32, cores=2)


def test_callback_accumulates_all_parts():
    out = run(EXAMPLES / "callback.py", 2)
    m = re.search(r"^Partial sum is (\S+) \| diff = (\S+)$", out, re.M)
    assert m, out
    assert abs(float(m.group(1)) - 0.6931472055599898) < 1e-12
    assert abs(float(m.group(2)) - (math.log(2) - float(m.group(1)))) < 1e-15
    stats(out, njobs=128, cores=2)


def test_quicksort_recursive_submission():
    out = run(EXAMPLES / "quicksort.py", 2, "--check")
    first = re.search(r"^first 30 numbers in increasing order: \[(.*)\]$", out, re.M)
    numbers = [int(x) for x in first.group(1).split(",")]
    assert len(numbers) == 30 and numbers == sorted(numbers)
    # 32 leaves, unless a split left a side of at most one element (no job for it).
    check = re.search(r"^sorted: (\w+) \| jobs: (\d+)$", out, re.M)
    assert check and check.group(1) == "True", out[-2000:]
    njobs = int(check.group(2))
    assert 28 <= njobs <= 32
    stats(out, njobs=njobs, cores=2)


def test_reverse_md5_early_exit_then_wait():
    out = run(EXAMPLES / "reverse_md5.py", 2)
    assert "hash = 48ae4d2d384dcc470e471f4169daa96a\n" in out
    assert "Reverse md5 for 48ae4d2d384dcc470e471f4169daa96a is 1829182\n" in out
    rows = stats(out, njobs=int(re.search(r"^ +(\d+) \|", out, re.M).group(1)), cores=2,
                 active=None)
    assert 100 <= int(rows[0][0]) <= 128


def test_dynamic_ncpus():
    out = run(EXAMPLES / "dynamic_ncpus.py", timeout=300)
    starts = re.findall(r"^Starting pp with (\d+) workers$", out, re.M)
    assert starts == ["1", "2", "4", "8", "16", "1"]
    sums = re.findall(r"^Partial sum is (.*)$", out, re.M)
    assert sums == ["0.693147205559988 | diff = -2.5000042702671976e-08"] * 6
    stats(out, njobs=384, cores=1)
