"""``python -m convert``: train, compile, verify parity and publish the model artifact."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from convert import parity, pipeline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m convert",
        description="Train gridscore's IsolationForest, compile it to ONNX (all trees in one "
        "tree-ensemble node), check parity with scikit-learn, and publish "
        "<model-dir>/<name>-<sha256[:12]>.onnx with its metadata JSON.",
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=Path(os.environ.get("MODEL_DIR") or "models"),
        help="where to publish (default: $MODEL_DIR or ./models)",
    )
    parser.add_argument(
        "--name",
        default=os.environ.get("MODEL_NAME") or pipeline.DEFAULT_NAME,
        help="artifact name before the digest (default: $MODEL_NAME or %(default)s)",
    )
    parser.add_argument(
        "--parity-points",
        type=int,
        default=pipeline.DEFAULT_PARITY_POINTS,
        help="points in the parity check run before publishing (default %(default)s)",
    )
    args = parser.parse_args(argv)

    def progress(stage: str, text: str) -> None:
        print(f"[{stage:>7}] {text}", flush=True)

    try:
        result = pipeline.run(args.model_dir, args.name, args.parity_points, progress)
    except parity.ParityError as exc:
        print(f"parity check failed, nothing published: {exc}", file=sys.stderr)
        return 1
    total = sum(result.seconds.values())
    meta = result.metadata
    print(
        f"published {result.path.name} (sha256 {meta.digest}); threshold {meta.threshold:.6f}; "
        f"parity max diff {meta.parity.max_abs_score_diff:.2e} over {meta.parity.points} points; "
        f"{total:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
