# Stage 2: grids per (dataset, optimizer), sharded training, one sweep table.


rule grid:
    output:
        f"{RESULTS}/grids/{{dataset}}/{{optimizer}}.parquet",
    log:
        f"{LOGS}/grid/{{dataset}}/{{optimizer}}.log",
    conda:
        "../../envs/lionsweep.yaml"
    params:
        spec=lambda w: as_json(grid_spec(config, w.dataset, w.optimizer)),
    shell:
        "python -m lionsweep grid --spec {params.spec:q} --output {output:q} > {log:q} 2>&1"


rule train_shard:
    input:
        grid=f"{RESULTS}/grids/{{dataset}}/{{optimizer}}.parquet",
        data=lambda w: prepared(w.dataset),
    output:
        f"{RESULTS}/shards/{{dataset}}/{{optimizer}}/seed{{seed}}/shard{{shard}}.parquet",
    log:
        f"{LOGS}/train/{{dataset}}/{{optimizer}}/seed{{seed}}/shard{{shard}}.log",
    conda:
        "../../envs/lionsweep.yaml"
    threads: config["training"]["threads"]
    resources:
        mem_mb=train_mem_mb,  # data (meta.json) + models (lionsweep.train.memory)
        runtime=config["training"]["runtime_min"],
    params:
        settings=lambda w: as_json(train_settings(w.dataset)),
        # a new engine version retrains every shard (lionsweep.ENGINE_VERSION)
        engine=ENGINE_VERSION,
        rows=shard_rows,
        data=lambda w, input: os.path.dirname(input.data[0]),
    shell:
        "python -m lionsweep train --dataset {wildcards.dataset:q}"
        " --optimizer {wildcards.optimizer:q} --seed {wildcards.seed:q}"
        " --shard {wildcards.shard:q} --rows {params.rows:q}"
        " --settings {params.settings:q} --grid {input.grid:q} --data {params.data:q}"
        " --threads {threads} --job-mem-mb {resources.mem_mb} --output {output:q}"
        " --engine-version {params.engine}"
        " 2> {log:q}"


rule aggregate:
    input:
        all_shards,
    output:
        sweep=SWEEP,
        summary=SUMMARY,
    log:
        f"{LOGS}/aggregate.log",
    conda:
        "../../envs/lionsweep.yaml"
    resources:
        mem_mb=results_mem_mb("aggregate"),
    params:
        # a digest of what the shards compute from: see sweep_digest in common.smk
        inputs=sweep_digest(),
        # the shard paths in a file: 10^5 of them exceed the argument-list limit
        shards=shard_list,
    shell:
        "python -m lionsweep aggregate --inputs-digest {params.inputs:q}"
        " --shard-list {params.shards:q} --output {output.sweep:q}"
        " --summary {output.summary:q} > {log:q} 2>&1"
