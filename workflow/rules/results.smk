# Stage 3: tables and figures, from the study's sweep.parquet (and confirm.parquet) and the
# datasets' meta (never retrains).
# File names come from lionsweep.results.files, which the writers use too.

from lionsweep.results.files import budget_outputs, figure_outputs, table_outputs


rule tables:
    input:
        sweep=SWEEP,
        summary=SUMMARY,
        confirm=CONFIRM,
        meta=[f"{data_dir(d)}/meta.json" for d in DATASETS],
    output:
        [
            report(path, **kw) if kw else path
            for path, kw in table_outputs(f"{RESULTS}/tables", OPTIMIZERS)
        ],
    log:
        f"{LOGS}/results/tables.log",
    conda:
        "../../envs/lionsweep.yaml"
    resources:
        mem_mb=results_mem_mb("tables"),
    params:
        settings=RESULTS_SETTINGS,
        datasets=DATASETS,
        optimizers=OPTIMIZERS,
        outdir=lambda w, output: os.path.dirname(output[0]),
    shell:
        "python -m lionsweep tables --sweep {input.sweep:q} --confirm {input.confirm:q}"
        " --summary {input.summary:q} --outdir {params.outdir:q}"
        " --settings {params.settings:q} --datasets {params.datasets:q}"
        " --optimizers {params.optimizers:q} --meta {input.meta:q} > {log:q} 2>&1"


rule figures:
    input:
        sweep=SWEEP,
        summary=SUMMARY,
        meta=[f"{data_dir(d)}/meta.json" for d in DATASETS],
        confirm=FIGURES_CONFIRM,
    output:
        [
            report(path, **kw) if kw else path
            for path, kw in figure_outputs(DATASETS, f"{RESULTS}/figures", OPTIMIZERS)
        ],
    log:
        f"{LOGS}/results/figures.log",
    conda:
        "../../envs/lionsweep.yaml"
    resources:
        mem_mb=results_mem_mb("figures"),
    params:
        settings=RESULTS_SETTINGS,
        datasets=DATASETS,
        optimizers=OPTIMIZERS,
        outdir=lambda w, output: os.path.dirname(output[0]),
        confirm=confirm_flag,
    shell:
        "MPLBACKEND=Agg python -m lionsweep figures --sweep {input.sweep:q} --outdir {params.outdir:q}"
        " --summary {input.summary:q}{params.confirm}"
        " --settings {params.settings:q} --datasets {params.datasets:q}"
        " --optimizers {params.optimizers:q} --meta {input.meta:q} > {log:q} 2>&1"


# The budget curve (lionsweep.results.budget): only when results.budget_curve names sweeps
# (budget_sweeps); another study's sweep must have been run with its own config first.
rule budget:
    input:
        sweeps=budget_sweeps(),
    output:
        [
            report(path, **kw) if kw else path
            for path, kw in budget_outputs(BUDGET, RESULTS)
        ],
    log:
        f"{LOGS}/results/budget.log",
    conda:
        "../../envs/lionsweep.yaml"
    params:
        settings=RESULTS_SETTINGS,
        datasets=DATASETS,
        optimizers=OPTIMIZERS,
        tables=lambda w, output: os.path.dirname(output[0]),  # tables first, then figures
        figures=lambda w, output: os.path.dirname(output[-1]),
    shell:
        "MPLBACKEND=Agg python -m lionsweep budget --sweeps {input.sweeps:q}"
        " --table-dir {params.tables:q} --figure-dir {params.figures:q}"
        " --settings {params.settings:q} --datasets {params.datasets:q}"
        " --optimizers {params.optimizers:q} > {log:q} 2>&1"


# The documented way to the HTML report: its inputs are every table and figure, so
# they are brought up to date first (a bare `snakemake --report` packages stale ones).
rule report:
    input:
        SWEEP,
        CONFIRM,
        rules.tables.output,
        rules.figures.output,
        rules.budget.output,
    output:
        f"{RESULTS}/report.html",
    log:
        f"{LOGS}/results/report.log",
    conda:
        "../../envs/lionsweep.yaml"
    resources:
        mem_mb=results_mem_mb("report"),
    params:
        snakefile=workflow.main_snakefile,
        details=f"{LOGS}/results/report.snakemake.log",
        config=layout.digest(config),  # the config is the report's provenance
    shell:
        "python -m lionsweep report --snakefile {params.snakefile:q} --output {output:q}"
        " --details {params.details:q} 2> {log:q}"
