"""Seeds vs interval width for the paper's claims, from a confirmation run with many seeds.

    .venv/bin/python -m lionsweep confirm --sweep results/paper/sweep.parquet \
        --data results/data/*/* --seeds "$(seq -s ' ' 1000 1039)" \
        --settings '<model+training JSON>' --output bench/out/confirm40.parquet
    .venv/bin/python bench/seeds_tradeoff.py bench/out/confirm40.parquet --counts 3 5 10 16 20 40

prints, per claim and seed count n, the mean width of the claim's 95% t-interval over
random subsets of n of the run's seeds and the share of subsets in which the claim is
decided (lionsweep.results.tradeoff), as a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from lionsweep.results.confirmed import load_confirm
from lionsweep.results.scoring import FINAL
from lionsweep.results.tradeoff import seeds_tradeoff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("confirm", type=Path, help="confirm.parquet with many seeds")
    parser.add_argument("--counts", type=int, nargs="+", default=[3, 5, 10, 16, 20, 40])
    parser.add_argument("--draws", type=int, default=1000, help="subsets per seed count")
    parser.add_argument("--level", type=float, default=0.95)
    args = parser.parse_args()
    table = seeds_tradeoff(load_confirm(args.confirm, FINAL), args.counts, args.draws, args.level)
    print(table.to_markdown(index=False, floatfmt=".2f"))


if __name__ == "__main__":
    main()
