"""Runtimes execute: training hosts and serving containers, on Docker, as processes, or faked."""
