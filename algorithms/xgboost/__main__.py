"""XGBoost, as SageMaker's XGBoost images run in algorithm mode: `python -m algorithms.xgboost train|serve`."""
from algorithms.common.training import main
from algorithms.xgboost.algorithm import XGBoostSpec

main(XGBoostSpec())
