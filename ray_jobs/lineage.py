"""Lineage of one record: from a final row (or an evaluated item) back to chunk, page and file.

    python -m ray_jobs.lineage --config ray_jobs/configs/quickstart.yaml <qa_id | chunk_id | row:N | item_id>
    python -m ray_jobs.lineage --config run.yaml row:0 --json

Shows the final row (or where and why it was dropped), the extraction's raw output, every stage's
verdict, the dedup cluster, decontamination candidates, the chunk with its page span and the source
document with its licence. Reads only the run directory (no Ray needed).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from pipeline import lineage
from pipeline import run_config as rc
from ray_jobs.common import run_main


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the run's YAML")
    parser.add_argument("key", help="qa_id, chunk_id, row:N of the final dataset, or an evaluated item id")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the report")
    args = parser.parse_args(argv)
    run = rc.load(args.config).run_dir
    try:
        info = lineage.lookup(run, args.key)
    except KeyError as exc:
        raise SystemExit(str(exc).strip("'\"")) from None
    print(lineage.to_json(info) if args.json else lineage.render(info))
    return info


if __name__ == "__main__":
    run_main(main)
