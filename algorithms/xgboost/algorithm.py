"""The XGBoost algorithm spec the shared `train`/`serve` programs run: its hyperparameter table,
its channels (`train` required; `validation`; `code`, which algorithm mode ignores), training
(training.py) and the whole inference exchange (serving.py), since XGBoost's codes and bodies
differ from the first-party algorithms' (415 for unparsable bodies, text/csv by default)."""

from __future__ import annotations

from algorithms.common.training import ChannelRule, TrainingContext
from algorithms.xgboost.hyperparameters import HYPERPARAMETERS


class XGBoostSpec:
    name = "xgboost"
    hyperparameters = HYPERPARAMETERS
    channels = {"train": ChannelRule(required=True), "validation": ChannelRule(), "code": ChannelRule()}
    default_train_content_type = "text/libsvm"  # a channel without ContentType is libsvm for XGBoost

    def train(self, ctx: TrainingContext) -> None:
        from algorithms.xgboost import training

        training.train(ctx)

    def load(self, model_dir):
        from algorithms.xgboost import serving

        return serving.load(model_dir)

    def respond(self, model, body: bytes, content_type: str | None, accept: str | None):
        from algorithms.xgboost import serving

        return serving.respond(model, body, content_type, accept)
