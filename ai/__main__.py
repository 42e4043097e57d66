"""`python -m ai`: train and evaluate radview's shipped models (headless, in the AI process).

    python -m ai train lungs --data ../shared/data
    python -m ai train classifier --data ../shared/data
    python -m ai evaluate --model cxr-lungs --data ../shared/data
    python -m ai evaluate --model cxr-covid --data ../shared/data

Training writes the model folder (model.keras, history.json) and then evaluates it, which
writes model.json (sha256, metrics with 95% CIs), MODEL_CARD.md and the plots.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent.parent / "resources" / "models"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ai", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a shipped model and write its folder and card")
    train.add_argument("which", choices=["lungs", "classifier"])
    train.add_argument("--data", required=True, help="data folder (holds cxr/, cxr-lung-masks/)")
    train.add_argument("--out", type=Path, help="model folder (default resources/models/<name>)")
    train.add_argument("--lungs", type=Path,
                       help="cxr-lungs folder for lung_crop (classifier; default shipped one)")
    train.add_argument("--seed", type=int)
    train.add_argument("--epochs", type=int, help="maximum epochs")
    train.add_argument("--max-minutes", type=float, help="stop after this much training time")
    train.add_argument("--threads", type=int, help="TensorFlow CPU threads")
    train.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                       help="override a training option, e.g. --set lr=0.001 (repeatable)")
    train.add_argument("--no-evaluate", action="store_true", help="skip the test evaluation")
    ev = sub.add_parser("evaluate", help="re-measure a shipped model; rewrite its metrics/card")
    ev.add_argument("--model", required=True, choices=["cxr-lungs", "cxr-covid"])
    ev.add_argument("--data", required=True)
    ev.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    ev.add_argument("--n-boot", type=int, default=2000)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    from ai.train import classifier, lungs

    if args.command == "evaluate":
        folder = args.models_dir / args.model
        if args.model == "cxr-lungs":
            lungs.evaluate(folder, args.data, n_boot=args.n_boot)
        else:
            classifier.evaluate(folder, args.data, args.models_dir / "cxr-lungs",
                                n_boot=args.n_boot)
        print(f"wrote {folder / 'model.json'} and {folder / 'MODEL_CARD.md'}")
        return 0

    command = " ".join(["python -m ai", *map(shlex.quote, argv)])
    options = {"seed": args.seed, "epochs": args.epochs, "max_minutes": args.max_minutes,
               "threads": args.threads, "command": command}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    lungs_dir = args.lungs or MODELS_DIR / "cxr-lungs"
    if args.which == "lungs":
        out = args.out or MODELS_DIR / lungs.NAME
        lungs.train(args.data, out, **options)
        if not args.no_evaluate:
            lungs.evaluate(out, args.data)
    else:
        out = args.out or MODELS_DIR / classifier.NAME
        classifier.train(args.data, out, lungs_dir, **options)
        if not args.no_evaluate:
            classifier.evaluate(out, args.data, lungs_dir)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
