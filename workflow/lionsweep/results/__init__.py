"""The results stage (workflow/rules/results.smk): selection, statistics, tables, figures."""
