# Stage 1: raw files (mirror or download, sha256-verified), then model-ready splits.
# Both are shared between studies and content-addressed (lionsweep.layout): the raw
# file by its sha256, the prepared data by a digest of its dataset entry and split.


rule fetch:
    output:
        "results/raw/{dataset}/{sha}/{file}",
    log:
        "logs/raw/{dataset}/{sha}/{file}.log",
    conda:
        "../../envs/lionsweep.yaml"
    params:
        sha256=lambda w: config["datasets"][w.dataset]["sha256"],
    # URL, timeout and retries come from the environment (lionsweep.layout.download_environment):
    # how a file is fetched must not refetch a file its sha256 already names.
    shell:
        "python -m lionsweep fetch --file {wildcards.file:q} --sha256 {params.sha256:q}"
        ' --url="${{LIONSWEEP_URL_{wildcards.dataset}:-}}"'
        ' --timeout "$LIONSWEEP_DOWNLOAD_TIMEOUT_S" --retries "$LIONSWEEP_DOWNLOAD_RETRIES"'
        " --output {output:q} 2> {log:q}"


# A checkpoint: cost-aware shards (sweep.shard_seconds) are sized from its meta.json,
# so the training jobs are planned once the dataset is prepared (see shard_plan).
checkpoint prepare:
    input:
        raw_file,
    output:
        multiext("results/data/{dataset}/{digest}/", *SPLIT_FILES),
        meta="results/data/{dataset}/{digest}/meta.json",
    log:
        "logs/data/{dataset}/{digest}.log",
    conda:
        "../../envs/lionsweep.yaml"
    params:
        spec=lambda w: as_json(dataset_spec(w.dataset)),
        split=as_json(config["split"]),
        sha256=lambda w: config["datasets"][w.dataset]["sha256"],
        outdir=lambda w, output: os.path.dirname(output.meta),
    # stdout (the summary) to the log; stderr (warnings, errors) to the log and the console
    shell:
        "python -m lionsweep prepare --dataset {wildcards.dataset:q} --spec {params.spec:q}"
        " --split {params.split:q} --raw {input:q} --sha256 {params.sha256:q}"
        " --outdir {params.outdir:q}"
        " > {log:q} 2> >(tee -a {log:q} >&2)"
