"""`python -m algorithms.pca train|serve`: the container's entry point."""
from algorithms.common.training import main
from algorithms.pca.algorithm import PCASpec

main(PCASpec())
