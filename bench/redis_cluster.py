"""A Redis Cluster of the benchmark's (and the tests') own: 3 masters and 3 replicas on free
ports, stopped with it (on Linux also when the benchmark dies)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from redis import Redis as SyncRedis

from bench.redis_server import free_port
from bot.storage.managed_server import HOW_TO_GET_REDIS, die_with_parent

MASTERS = 3
# How long a node may be silent before the others count it failed: short, so a test's
# failover takes well under a second.
NODE_TIMEOUT_MS = 1000
START_SECONDS = 20.0


def _node_port() -> int:
    """A free port whose cluster bus port (the port + 10000) is a port too, and free."""
    while True:
        port = free_port()
        if port + 10000 <= 65535:
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port


class RedisCluster:
    """Six redis-server processes with `--cluster-enabled yes`, joined by `redis-cli --cluster
    create` (one replica per master, so a master can fail over)."""

    def __init__(self, workdir: Path) -> None:
        binary, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if binary is None or cli is None:
            raise SystemExit(HOW_TO_GET_REDIS)
        self.binary, self.cli = binary, cli
        self.workdir = workdir
        self.ports = [_node_port() for _ in range(MASTERS * 2)]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """Any one node: the client learns the others."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> None:
        for port in self.ports:
            self.processes[port] = subprocess.Popen(
                [self.binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--cluster-enabled", "yes",
                 "--cluster-config-file", f"nodes-{port}.conf",
                 "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--dir", str(self.workdir)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=die_with_parent(),  # only prctl, before exec
            )  # fmt: skip
        deadline = time.monotonic() + START_SECONDS
        for port in self.ports:
            self._until(deadline, lambda p=port: bool(self.node(p).ping()))
        subprocess.run(
            [self.cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
             "--cluster-replicas", "1", "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=START_SECONDS,
        )  # fmt: skip
        for port in self.ports:
            self._until(deadline, lambda p=port: self._state_ok(p))

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self.processes.clear()

    def node(self, port: int) -> SyncRedis:
        return SyncRedis(port=port, socket_connect_timeout=0.5, socket_timeout=2)

    def replicas(self) -> list[int]:
        return [p for p in self.ports if self._role(p) == "slave"]

    def replica_serving(self, key: str, timeout: float = 10.0) -> int:
        """The port of a replica of the master that holds `key`'s slot, once it replicates."""
        any_node = self.node(self.ports[0])
        slot = int(any_node.execute_command("CLUSTER KEYSLOT", key))
        master = next(
            int(primary[1])
            for start, end, primary, *_ in any_node.execute_command("CLUSTER SLOTS")
            if start <= slot <= end
        )
        found: list[int] = []

        def replicating() -> bool:
            for port in self.replicas():
                info = self.node(port).info("replication")
                if info["master_port"] == master and info["master_link_status"] == "up":
                    found.append(port)
                    return True
            return False

        self._until(time.monotonic() + timeout, replicating)
        return found[0]

    def fail_over(self, replica: int, timeout: float = 10.0) -> None:
        """Make `replica` the master of its slots (a coordinated failover: no write lost),
        and wait until the whole cluster agrees."""
        self.node(replica).execute_command("CLUSTER FAILOVER")
        deadline = time.monotonic() + timeout
        self._until(deadline, lambda: self._role(replica) == "master")
        for port in self.ports:
            self._until(deadline, lambda p=port: self._state_ok(p))

    def _role(self, port: int) -> str:
        return str(self.node(port).info("replication")["role"])

    def _state_ok(self, port: int) -> bool:
        info = self.node(port).execute_command("CLUSTER INFO")  # parsed into a dict
        return bool(info.get("cluster_state") == "ok")

    @staticmethod
    def _until(deadline: float, condition: object) -> None:
        assert callable(condition)
        while True:
            try:
                if condition():
                    return
            except Exception:
                if time.monotonic() > deadline:
                    raise
            if time.monotonic() > deadline:
                raise TimeoutError("the Redis Cluster did not get ready")
            time.sleep(0.02)
