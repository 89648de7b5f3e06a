# lion-sweep: the Lion optimizer's hyperparameters on Titanic, Mushroom and Spambase,
# compared with AdamW. The stages follow the study: data -> grid sweep -> results.


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/sweep.smk"


localrules:
    all,
    data,
    sweep,
    fetch,
    grid,
    aggregate,


rule all:
    default_target: True
    input:
        "results/sweep.parquet",


rule data:
    input:
        expand("results/data/{dataset}/meta.json", dataset=DATASETS),


rule sweep:
    input:
        "results/sweep.parquet",
