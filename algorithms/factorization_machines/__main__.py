"""Factorization Machines, as SageMaker's `factorization-machines` image: `model_algo-1` is a zip
of an MXNet checkpoint (`symbol.json`, `params` with `w0_weight`, `w1_weight`, `v`) and `meta.json`."""
from algorithms.common.training import main
from algorithms.factorization_machines.algorithm import FactorizationMachinesSpec

main(FactorizationMachinesSpec())
