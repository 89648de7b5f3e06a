# Stage 3: tables and figures, from results/sweep.parquet alone (seconds; never retrains).
# File names come from lionsweep.outputs, which the writers use too.

import os

from lionsweep.outputs import figure_outputs, table_outputs

RESULTS_SETTINGS = as_json(config.get("results", {}))


rule tables:
    input:
        "results/sweep.parquet",
    output:
        [report(path, **kw) if kw else path for path, kw in table_outputs()],
    log:
        "logs/results/tables.log",
    conda:
        "../../envs/lionsweep.yaml"
    params:
        settings=RESULTS_SETTINGS,
        datasets=DATASETS,
        optimizers=OPTIMIZERS,
        outdir=lambda w, output: os.path.dirname(output[0]),
    shell:
        "python -m lionsweep tables --sweep {input} --outdir {params.outdir}"
        " --settings {params.settings:q} --datasets {params.datasets}"
        " --optimizers {params.optimizers} > {log} 2>&1"


rule figures:
    input:
        "results/sweep.parquet",
    output:
        [report(path, **kw) if kw else path for path, kw in figure_outputs(DATASETS)],
    log:
        "logs/results/figures.log",
    conda:
        "../../envs/lionsweep.yaml"
    params:
        settings=RESULTS_SETTINGS,
        datasets=DATASETS,
        optimizers=OPTIMIZERS,
        outdir=lambda w, output: os.path.dirname(output[0]),
    shell:
        "MPLBACKEND=Agg python -m lionsweep figures --sweep {input} --outdir {params.outdir}"
        " --settings {params.settings:q} --datasets {params.datasets}"
        " --optimizers {params.optimizers} > {log} 2>&1"
