# Stage 2: grids per (dataset, optimizer), sharded training, one sweep table.


rule grid:
    output:
        "results/grids/{dataset}/{optimizer}.parquet",
    log:
        "logs/grid/{dataset}/{optimizer}.log",
    conda:
        "../../envs/lionsweep.yaml"
    params:
        spec=lambda w: as_json(grid_spec(config, w.dataset, w.optimizer)),
    shell:
        "python -m lionsweep grid --spec {params.spec:q} --output {output} > {log} 2>&1"


rule train_shard:
    input:
        grid="results/grids/{dataset}/{optimizer}.parquet",
        data=lambda w: prepared(w.dataset),
    output:
        "results/shards/{dataset}/{optimizer}/seed{seed}/shard{shard}.parquet",
    log:
        "logs/train/{dataset}/{optimizer}/seed{seed}/shard{shard}.log",
    conda:
        "../../envs/lionsweep.yaml"
    threads: config["training"]["threads"]
    resources:
        mem_mb=config["training"]["memory_budget_mb"] + 1024,
        runtime=config["training"]["runtime_min"],
    params:
        settings=as_json(train_settings()),
        rows=shard_rows,
    shell:
        "python -m lionsweep train --dataset {wildcards.dataset} --optimizer {wildcards.optimizer}"
        " --seed {wildcards.seed} --shard {wildcards.shard} --rows {params.rows}"
        " --settings {params.settings:q} --grid {input.grid}"
        " --data results/data/{wildcards.dataset} --threads {threads}"
        " --job-mem-mb {resources.mem_mb} --output {output}"
        " 2> {log}"


rule aggregate:
    input:
        all_shards,
    output:
        "results/sweep.parquet",
    log:
        "logs/aggregate.log",
    conda:
        "../../envs/lionsweep.yaml"
    shell:
        "python -m lionsweep aggregate --output {output} {input} > {log} 2>&1"
