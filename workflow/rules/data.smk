"""Download the original archives of the real datasets (needs internet).

    snakemake --cores 1 download

Not part of the sweep. One ``download_<name>`` rule per dataset with sources in
``download.sources``; each calls ``cymlp.datasets.download``, which streams the file to
a temporary name, checks its SHA-256 against the pinned value (when given) and only
then moves it into ``download.dest_dir``. The archives are the publishers' originals;
the sweep reads the one-example-a-line files of ``data_dir``.
"""

for _name, _sources in DOWNLOAD_SOURCES.items():

    rule:
        name:
            f"download_{_name}"
        output:
            [source_file(source["url"]) for source in _sources],
        params:
            name=_name,
            sources=[dict(source) for source in _sources],
        log:
            f"{RESULTS}/logs/download/{_name}.log",
        conda:
            "../envs/cymlp.yaml"
        script:
            "../scripts/download.py"


rule download:
    input:
        [source_file(s["url"]) for sources in DOWNLOAD_SOURCES.values() for s in sources],


# Downloads need the internet, which cluster nodes often lack: run them locally.
localrules:
    download,
    download_mr,
    download_sst2,
    download_trec,
