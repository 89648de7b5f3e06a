"""Training K models at once: model, task heads, metrics, trainer, engine."""
