"""The data stage (workflow/rules/data.smk): fetch, validate, encode, split."""
