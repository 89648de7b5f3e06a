"""The confirmation stage (workflow/rules/confirm.smk): fresh-seed retraining."""
