"""lion-sweep: a reproducible study of the Lion optimizer's hyperparameters."""

__version__ = "0.1.0"
# The training engine's version: bumped by any change that moves a number the engine
# returns (bench/golden.py shows which), however slightly. It is a parameter of every
# `train_shard` job (Snakemake retrains shards of another version) and a column of each
# shard (aggregation refuses to mix versions). Shards without the column are version 1.
# 2: a diverged model is masked on the device instead of frozen (issue 17).
# 3: Schedule-Free is evaluated at its averaged point x, as its reference's eval() (it was
#    evaluated at y, the gradient point): its curves, best epochs and metrics move; weight
#    EMA (ema_decay, issue 20) is new and off by default, and moves nothing else.
ENGINE_VERSION = 3
