"""The sweep stage (workflow/rules/sweep.smk): grids, shards, aggregation."""
