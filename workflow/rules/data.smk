# Stage 1: raw files (mirror or download, sha256-verified), then model-ready splits.


rule fetch:
    output:
        "results/raw/{dataset}/{file}",
    log:
        "logs/fetch/{dataset}/{file}.log",
    conda:
        "../../envs/lionsweep.yaml"
    params:
        sha256=lambda w: config["datasets"][w.dataset]["sha256"],
        url=lambda w: config["datasets"][w.dataset].get("url") or "",
        timeout=config["download"]["timeout_s"],
        retries=config["download"]["retries"],
    shell:
        "python -m lionsweep fetch --file {wildcards.file} --sha256 {params.sha256} --url={params.url:q}"
        " --timeout {params.timeout} --retries {params.retries} --output {output} 2> {log}"


rule prepare:
    input:
        raw_file,
    output:
        multiext(
            "results/data/{dataset}/", "train.parquet", "val.parquet", "test.parquet"
        ),
        meta="results/data/{dataset}/meta.json",
    log:
        "logs/prepare/{dataset}.log",
    conda:
        "../../envs/lionsweep.yaml"
    params:
        spec=lambda w: as_json(dataset_spec(w.dataset)),
        split=as_json(config["split"]),
    shell:
        "python -m lionsweep prepare --dataset {wildcards.dataset} --spec {params.spec:q}"
        " --split {params.split:q} --raw {input} --outdir results/data/{wildcards.dataset}"
        " > {log} 2>&1"
