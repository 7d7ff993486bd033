"""The CPU thread rule (vcmr.threads): affinity, hyper-threads, cgroup quota, overrides, and the
OpenMP variables set before torch starts. Nothing here depends on the machine's speed."""
import os
import subprocess
import sys

import pytest

from vcmr.cli import main
from vcmr.errors import VcmrError
from vcmr.threads import available_cpus, cgroup_cpu_limit, configure_threads, physical_cores, thread_count


def fake_topology(tmp_path, cores):
    """sysfs-like topology: cores[i] = (package, core) of logical CPU i."""
    for cpu, (package, core) in enumerate(cores):
        topo = tmp_path / f"cpu{cpu}" / "topology"
        topo.mkdir(parents=True)
        (topo / "physical_package_id").write_text(f"{package}\n")
        (topo / "core_id").write_text(f"{core}\n")
    return tmp_path


def cpu_max(tmp_path, text):
    (tmp_path / "cpu.max").write_text(text)
    return tmp_path / "cpu.max"


def test_hyper_threads_of_one_core_count_once(tmp_path):
    sys_cpu = fake_topology(tmp_path, [(0, 0), (0, 1), (0, 0), (0, 1), (1, 0), (1, 0)])
    assert physical_cores({0, 1, 2, 3, 4, 5}, sys_cpu) == 3
    assert physical_cores({0, 2}, sys_cpu) == 1          # two siblings of core 0
    assert physical_cores({0, 4}, sys_cpu) == 2          # core 0 of each package
    assert physical_cores({7, 8}, sys_cpu) == 2          # unreadable topology: logical CPUs


def test_affinity_and_cgroup_quota_cap_the_count(tmp_path):
    sys_cpu = fake_topology(tmp_path / "sys", [(0, c) for c in range(8)])
    unlimited = cpu_max(tmp_path, "max 100000\n")
    assert available_cpus({0, 1, 2, 3, 4, 5, 6, 7}, sys_cpu, unlimited) == 8
    assert available_cpus({2, 5}, sys_cpu, unlimited) == 2
    assert cgroup_cpu_limit(cpu_max(tmp_path, "150000 100000\n")) == 2   # 1.5 CPUs -> 2
    assert available_cpus({0, 1, 2, 3, 4, 5, 6, 7}, sys_cpu, tmp_path / "cpu.max") == 2
    assert available_cpus({3}, sys_cpu, tmp_path / "cpu.max") == 1
    assert cgroup_cpu_limit(tmp_path / "missing") is None
    assert cgroup_cpu_limit(cpu_max(tmp_path, "garbage")) is None


def test_overrides_win_in_order(tmp_path):
    src = {"cpus": {0, 1, 2, 3}, "sys_cpu": fake_topology(tmp_path, [(0, c) for c in range(4)]),
           "cgroup": tmp_path / "none"}
    assert thread_count({}, **src) == 4
    assert thread_count({"OMP_NUM_THREADS": "3"}, **src) == 3
    assert thread_count({"OMP_NUM_THREADS": "3", "VCMR_THREADS": "6"}, **src) == 6
    assert thread_count({"VCMR_THREADS": " Torch "}, **src) is None
    for bad in ("0", "-2", "two", "1.5"):
        with pytest.raises(VcmrError, match="VCMR_THREADS"):
            thread_count({"VCMR_THREADS": bad}, **src)
    with pytest.raises(VcmrError, match="OMP_NUM_THREADS"):
        thread_count({"OMP_NUM_THREADS": "many"}, **src)


def test_configure_sets_only_what_the_user_left_unset(tmp_path):
    src = {"cpus": {0, 1}, "sys_cpu": fake_topology(tmp_path, [(0, 0), (0, 1)]), "cgroup": tmp_path / "none"}
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert configure_threads(env, **src) == 2
    assert env == {"OMP_WAIT_POLICY": "ACTIVE", "KMP_BLOCKTIME": "0", "OMP_NUM_THREADS": "2"}
    env = {"VCMR_THREADS": "1", "OMP_NUM_THREADS": "4"}
    assert configure_threads(env, **src) == 1
    assert env["OMP_NUM_THREADS"] == "1" and env["OMP_WAIT_POLICY"] == "PASSIVE"
    env = {"VCMR_THREADS": "torch"}
    assert configure_threads(env, **src) is None
    assert env == {"VCMR_THREADS": "torch"}


def run_python(code, env_update, affinity=None):
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME", "VCMR_THREADS")}
    env.update(env_update)
    pre = f"import os; os.sched_setaffinity(0, {affinity!r}); " if affinity else ""
    return subprocess.run([sys.executable, "-c", pre + code], env=env, capture_output=True,
                          text=True, check=True).stdout.split()


CODE = ("from vcmr.threads import configure_threads; configure_threads(); import torch; "
        "print(torch.get_num_threads(), os.environ['OMP_WAIT_POLICY'])")


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs os.sched_setaffinity (Linux)")
def test_a_real_process_follows_its_affinity_and_the_override():
    one_cpu = {min(os.sched_getaffinity(0))}
    assert run_python("import os; " + CODE, {}, one_cpu) == ["1", "PASSIVE"]
    if (os.cpu_count() or 1) >= 2:  # torch caps its threads at the machine's cores
        assert run_python("import os; " + CODE, {"VCMR_THREADS": "2"}, one_cpu) == ["2", "PASSIVE"]
    assert run_python("import os; " + CODE, {"OMP_WAIT_POLICY": "ACTIVE"}, one_cpu) == ["1", "ACTIVE"]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs os.sched_setaffinity (Linux)")
def test_the_command_sets_the_defaults_before_torch_is_imported():
    # what the subcommand finds when vcmr.cli.main hands over to it
    code = ("import os, sys; import vcmr.cli as c\n"
            "def spy(name, argv):\n"
            "    print('torch' in sys.modules, os.environ['OMP_WAIT_POLICY'], os.environ['OMP_NUM_THREADS'])\n"
            "    raise SystemExit(0)\n"
            "c.parse_command = spy\n"
            "c.main(['embed', 'x.wav'])")
    one_cpu = {min(os.sched_getaffinity(0))}
    assert run_python(code, {}, one_cpu) == ["False", "PASSIVE", "1"]


def test_a_bad_override_stops_the_command_with_a_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("VCMR_THREADS", "lots")
    assert main(["embed", "x.wav", "--ckpt", "m", "--out", "o.npy"]) == 2
    assert "VCMR_THREADS='lots'" in capsys.readouterr().err
