"""Concatenate the per-dataset Markdown tables into one summary page."""

import sys


def main(snakemake):
    parts = ["# cymlp sweep summary", ""]
    for path in snakemake.input.tables:
        with open(path, encoding="utf-8") as fh:
            text = fh.read().strip()
        # Demote the per-dataset headings by one level under the page title.
        parts.append("\n".join("#" + line if line.startswith("#") else line
                               for line in text.splitlines()))
        parts.append("")
    with open(snakemake.output[0], "w", encoding="utf-8") as fh:
        fh.write("\n".join(parts))


if __name__ == "__main__" and "snakemake" in globals():
    job = globals()["snakemake"]  # injected by Snakemake's script directive
    # Errors and tracebacks go to the rule's log file, open until the process ends.
    sys.stderr = open(job.log[0], "w", buffering=1)  # noqa: SIM115
    main(job)
