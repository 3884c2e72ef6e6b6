"""SageMaker's built-in XGBoost (`sagemaker-xgboost:<version>` and the legacy `xgboost:1`/`:latest`
images in algorithm mode) on the real XGBoost library: training.py (the `train` program's work),
serving.py (the `serve` program's answers), hyperparameters.py, data.py, metrics.py, selectable.py.

Inside this package always write `import xgboost` / `from algorithms.xgboost import …`: absolute
imports keep the library and this package apart (library.py checks that the library was found).
"""
