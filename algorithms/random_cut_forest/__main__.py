"""`python -m algorithms.random_cut_forest train|serve`: the container's entry point."""
from algorithms.common.training import main
from algorithms.random_cut_forest.algorithm import RandomCutForestSpec

main(RandomCutForestSpec())
