# Stage 2b: the default and the validation-selected configuration of each (dataset,
# optimizer) retrained on fresh seeds (confirm.seeds), which decide the claims.
# Logic in lionsweep.confirm.retrain; training through the shards' own path.


rule confirm:
    input:
        sweep=SWEEP,
        # selection reads the per-configuration summary, a grid at a time (issue 19)
        summary=SUMMARY,
        data=[f for d in DATASETS for f in (*prepared(d), f"{data_dir(d)}/meta.json")],
    output:
        CONFIRM,
    log:
        f"{LOGS}/confirm.log",
    conda:
        "../../envs/lionsweep.yaml"
    # One thread: two models per call are far too small for a second one to pay (with
    # 2 threads a run took over twice the CPU time on the 2-core machine); the other
    # core draws the figures meanwhile.
    threads: 1
    resources:
        mem_mb=confirm_mem_mb,  # training (meta.json) + the sweep (lionsweep.train.memory)
        runtime=config["training"]["runtime_min"],
    params:
        settings=as_json(train_settings(halving=False)),
        results=SELECTION_SETTINGS,
        seeds=" ".join(map(str, CONFIRM_SEEDS)),
        data=[data_dir(d) for d in DATASETS],
        datasets=DATASETS,
        optimizers=OPTIMIZERS,
        # the sweep's digest (see sweep_digest in common.smk): a changed sweep setting
        # makes the confirmation out of date even when the sweep table was not rebuilt
        inputs=sweep_digest(),
    shell:
        "python -m lionsweep confirm --sweep {input.sweep:q} --summary {input.summary:q}"
        " --data {params.data:q}"
        " --seeds {params.seeds:q} --settings {params.settings:q} --results {params.results:q}"
        " --datasets {params.datasets:q} --optimizers {params.optimizers:q} --threads {threads}"
        " --job-mem-mb {resources.mem_mb} --inputs-digest {params.inputs:q}"
        " --output {output:q} 2> {log:q}"
