"""A real Redis Cluster for tests (3 masters, 3 replicas): the benchmark's, one class for both."""

from __future__ import annotations

from bench.redis_cluster import RedisCluster

__all__ = ["RedisCluster"]
