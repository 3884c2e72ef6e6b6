from algorithms.common.training import main
from algorithms.kmeans.algorithm import KMeansSpec

main(KMeansSpec())
