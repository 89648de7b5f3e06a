# lion-sweep's entry point for `snakemake` run in a clone of the repository. The
# workflow itself is workflow/Snakefile, where the Snakemake workflow catalog and
# `snakedeploy deploy-workflow` expect it; this file only includes it. Not with the
# `include:` directive, which keeps the including file's default target (none here),
# but with the call it compiles to, asking for the included file's (`rule all`).
workflow.include("workflow/Snakefile", overwrite_default_target=True)
