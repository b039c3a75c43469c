"""Start real Ray nodes on 127.0.0.1 for tests (`ray start --block` in their own sessions), and
stop exactly those nodes afterwards — never `ray stop`, which would kill every Ray on the machine."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


_GIVEN: set[int] = set()


def free_port() -> int:
    """A free TCP port on 127.0.0.1, never the same one twice in this process."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


def env() -> dict[str, str]:
    # Ray 2.60 turns token authentication on by default for new clusters; saying "token"
    # explicitly makes the nodes and the `ray job` CLI agree on it (both read ~/.ray/auth_token).
    out = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "RAY_AUTH_MODE": "token"}
    out.pop("RAY_ADDRESS", None)
    return out


@dataclass
class LocalCluster:
    gcs_address: str
    dashboard: str
    temp_dir: Path
    procs: list[subprocess.Popen] = field(default_factory=list)

    def add_node(self, num_cpus: int, resources: dict[str, float] | None = None) -> None:
        cmd = [str(BIN / "ray"), "start", "--block", f"--address={self.gcs_address}", f"--num-cpus={num_cpus}",
               *_node_ports()]  # fmt: skip
        if resources:
            cmd.append(f"--resources={json.dumps(resources)}")
        self.procs.append(_spawn(cmd, self.temp_dir.with_suffix(f".node{len(self.procs)}.log")))

    def submit(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        """`ray job submit --working-dir <repo> -- <args>`, retried while the job agent starts."""
        cmd = [
            str(BIN / "ray"),
            "job",
            "submit",
            f"--address={self.dashboard}",
            f"--working-dir={REPO}",
            "--",
            *args,
        ]
        deadline = time.time() + 300
        while True:
            result = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=timeout)
            output = result.stdout + result.stderr
            retryable = "No available agent" in output or "Connection refused" in output
            if result.returncode == 0 or not retryable or time.time() > deadline:
                return result
            time.sleep(3)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        for log in self.temp_dir.parent.glob(f"{self.temp_dir.name}.*log"):
            log.unlink(missing_ok=True)


def _node_ports() -> list[str]:
    # Every node's agents get their own free ports: the defaults (52365 …) clash with any other
    # Ray on the machine, and an agent that cannot bind leaves the job server without an agent.
    return [
        "--node-ip-address=127.0.0.1",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--dashboard-agent-grpc-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
        f"--metrics-export-port={free_port()}",
    ]


def _spawn(cmd: list[str], log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, env=env(), start_new_session=True, stdout=out, stderr=subprocess.STDOUT)


def _wait_for_dashboard(
    cluster: LocalCluster, head: subprocess.Popen, log: Path, timeout: float = 300
) -> None:
    import urllib.error
    import urllib.request

    deadline = time.time() + timeout
    while time.time() < deadline:
        if head.poll() is not None:
            raise RuntimeError(f"ray start --head exited ({head.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{cluster.dashboard}/api/version", timeout=5):
                return
        except urllib.error.HTTPError:
            return  # it answers (401 without the auth token): the dashboard is up
        except OSError:
            time.sleep(2)
    raise TimeoutError(f"the dashboard at {cluster.dashboard} did not come up:\n{log.read_text()[-3000:]}")


def start_head(num_cpus: int, resources: dict[str, float] | None = None) -> LocalCluster:
    gcs_port, dash_port = free_port(), free_port()
    temp_dir = Path("/tmp") / f"ray_lc{os.getpid()}_{gcs_port}"
    cmd = [
        str(BIN / "ray"), "start", "--head", "--block", f"--port={gcs_port}", f"--num-cpus={num_cpus}",
        "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash_port}",
        f"--temp-dir={temp_dir}", "--disable-usage-stats", *_node_ports(),
    ]  # fmt: skip
    if resources:
        cmd.append(f"--resources={json.dumps(resources)}")
    cluster = LocalCluster(f"127.0.0.1:{gcs_port}", f"http://127.0.0.1:{dash_port}", temp_dir)
    log = temp_dir.with_suffix(".head.log")
    head = _spawn(cmd, log)
    cluster.procs.append(head)
    try:
        _wait_for_dashboard(cluster, head, log)
    except Exception:
        cluster.stop()
        raise
    return cluster
