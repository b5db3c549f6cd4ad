"""Fetch the original archives of one dataset with ``cymlp.datasets.download``.

Every source is checked against its pinned SHA-256 (when the configuration gives one);
on a mismatch the download raises and nothing is kept under the final name.
"""

import hashlib
import os
import sys
import warnings


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(name, sources, dest_dir, expected_paths):
    from cymlp import datasets

    for source, expected in zip(sources, expected_paths):
        url, sha256 = source["url"], source.get("sha256")
        print(f"{name}: fetching {url}", file=sys.stderr)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the unpinned checksum is logged below
            written = datasets.download(name, dest_dir, url=url, sha256=sha256)
        for path in written:
            if os.path.abspath(path) != os.path.abspath(expected):
                raise RuntimeError(f"{url} was stored as {path}, expected {expected}")
            state = "verified" if sha256 else "not pinned"
            print(f"{name}: {path} sha256 {sha256_of(path)} ({state})", file=sys.stderr)


def main(snakemake):
    fetch(snakemake.params.name, snakemake.params.sources,
          os.path.dirname(snakemake.output[0]) or ".", list(snakemake.output))


if __name__ == "__main__" and "snakemake" in globals():
    job = globals()["snakemake"]  # injected by Snakemake's script directive
    # Errors and tracebacks go to the rule's log file, open until the process ends.
    sys.stderr = open(job.log[0], "w", buffering=1)  # noqa: SIM115
    main(job)
