# lion-sweep: the Lion optimizer's hyperparameters on Titanic, Mushroom and Spambase,
# compared with AdamW. The stages follow the study: data -> grid sweep -> results.
# A study's outputs live under results/<study.name>/ (config/config.yaml: `paper`).


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/sweep.smk"
include: "workflow/rules/results.smk"


localrules:
    all,
    data,
    sweep,
    fetch,
    grid,
    aggregate,
    tables,
    figures,


rule all:
    default_target: True
    input:
        SWEEP,
        rules.tables.output,
        rules.figures.output,


rule data:
    input:
        [f"{data_dir(d)}/meta.json" for d in DATASETS],


rule sweep:
    input:
        SWEEP,
