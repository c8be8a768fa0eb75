"""One teacher file for a run over several sources, from the per-source caches of
tools/teacher_labels.py. A multi-source run names its rows SOURCE/FILE (core/data/sources.py),
so each cache's files get their source's prefix here.

    python tools/merge_teachers.py --out /work/cache/teachers/m3.csv \\
        UTKFace=/work/cache/teachers/probe-faceapi.csv mebeauty=/work/cache/teachers/mebeauty-faceapi.csv:age
    python tools/merge_teachers.py --out /work/cache/teachers/m3-embedding.npz \\
        UTKFace=/work/cache/teachers/dlib-embedding.npz mebeauty=/work/cache/teachers/mebeauty-embedding.npz

`:age` (or `:gender`) keeps only that head's opinion of a CSV teacher: e.g. face-api.js's ages
for a source whose genders are labelled and whose teacher's gender is weaker than the labels.
Output by extension: .csv (file, p_female, age) or .npz (files, embeddings, framing).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


def merge_csv(parts: list[tuple[str, Path, str | None]]) -> pd.DataFrame:
    tables = []
    for source, path, only in parts:
        table = pd.read_csv(path)[["file", "p_female", "age"]]
        if only == "age":
            table["p_female"] = np.nan
        elif only == "gender":
            table["age"] = np.nan
        tables.append(table.assign(file=source + "/" + table["file"].astype(str)))
    return pd.concat(tables, ignore_index=True)


def merge_npz(parts: list[tuple[str, Path, str | None]]) -> dict[str, np.ndarray]:
    loaded = [(source, dict(np.load(path))) for source, path, _ in parts]
    return {"files": np.concatenate([np.char.add(source + "/", cache["files"].astype(str)) for source, cache in loaded]),
            "embeddings": np.concatenate([cache["embeddings"] for _, cache in loaded]),
            "framing": np.concatenate([cache["framing"] for _, cache in loaded])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="+", metavar="SOURCE=PATH[:age|:gender]")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    parts = []
    for spec in args.parts:
        source, _, rest = spec.partition("=")
        path, _, only = rest.partition(":")
        if not source or not path or only not in ("", "age", "gender"):
            parser.error(f"not SOURCE=PATH[:age|:gender]: {spec}")
        parts.append((source, Path(path), only or None))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix == ".npz":
        merged = merge_npz(parts)
        np.savez(args.out, **merged)
        count = len(merged["files"])
    else:
        table = merge_csv(parts)
        table.to_csv(args.out, index=False, float_format="%.6g")
        count = len(table)
    print(f"wrote {count} rows from {len(parts)} sources to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
