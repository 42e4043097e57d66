"""`python -m ai`: train and evaluate radview's shipped models (headless, in the AI process).

    python -m ai train lungs --data ../shared/data
    python -m ai train classifier --data ../shared/data
    python -m ai train infection --data ../shared/data
    python -m ai evaluate --model cxr-lungs --data ../shared/data
    python -m ai evaluate --model cxr-covid --data ../shared/data
    python -m ai evaluate --model ct-infection --data ../shared/data --cv-dir DIR
    python -m ai finetune segmentation --model ct-infection --masks DIR

Training writes the model folder (model.keras, history.json) and then evaluates it, which
writes model.json (sha256, metrics with 95% CIs), MODEL_CARD.md and the plots. ct-infection
is measured by grouped cross-validation during training (cv.json in --cv-dir); its
`evaluate` rewrites model.json, the card and the plots from that cv.json.
Fine-tuning writes a new model version into the user models folder (ai.registry).
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
    train.add_argument("which", choices=["lungs", "classifier", "infection"])
    train.add_argument(
        "--data", required=True, help="data folder (holds cxr/, cxr-lung-masks/, ct-infection/)"
    )
    train.add_argument("--out", type=Path, help="model folder (default resources/models/<name>)")
    train.add_argument(
        "--lungs",
        type=Path,
        help="cxr-lungs folder for lung_crop (classifier; default shipped one)",
    )
    train.add_argument("--seed", type=int)
    train.add_argument("--epochs", type=int, help="maximum epochs")
    train.add_argument("--max-minutes", type=float, help="stop after this much training time")
    train.add_argument("--threads", type=int, help="TensorFlow CPU threads")
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="override a training option, e.g. --set lr=0.001 (repeatable)",
    )
    train.add_argument("--no-evaluate", action="store_true", help="skip the test evaluation")
    train.add_argument(
        "--cv-dir",
        type=Path,
        default=Path("build/ct-infection-cv"),
        help="infection: where the cross-validation writes cv.json",
    )
    train.add_argument(
        "--no-cv",
        action="store_true",
        help="infection: reuse --cv-dir/cv.json instead of cross-validating",
    )
    ft = sub.add_parser("finetune", help="continue training a model on corrected label exports")
    ft.add_argument("task", choices=["segmentation"])
    ft.add_argument("--model", required=True, help="model name (user or shipped) or folder")
    ft.add_argument(
        "--masks",
        required=True,
        type=Path,
        help="folder of radview label exports (<stem>.nii.gz + <stem>.json)",
    )
    ft.add_argument(
        "--images",
        type=Path,
        help="folder of the source DICOM series (default: each sidecar's files_dir)",
    )
    ft.add_argument("--epochs", type=int, default=8)
    ft.add_argument("--lr", type=float, default=2e-4)
    ft.add_argument(
        "--out",
        type=Path,
        help="models folder to write the new version into (default: the user models folder)",
    )
    ft.add_argument("--seed", type=int, default=0)
    ev = sub.add_parser("evaluate", help="re-measure a shipped model; rewrite its metrics/card")
    ev.add_argument("--model", required=True, choices=["cxr-lungs", "cxr-covid", "ct-infection"])
    ev.add_argument("--data", required=True)
    ev.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    ev.add_argument("--n-boot", type=int, default=2000)
    ev.add_argument(
        "--cv-dir",
        type=Path,
        default=Path("build/ct-infection-cv"),
        help="ct-infection: folder holding the cross-validation's cv.json",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    if args.command == "finetune":
        return _finetune(args, " ".join(["python -m ai", *map(shlex.quote, argv)]))
    from ai.train import classifier, lungs

    if args.command == "evaluate":
        folder = args.models_dir / args.model
        if args.model == "ct-infection":
            from ai.train import infection

            infection.write_folder(folder, args.data, args.cv_dir, n_boot=args.n_boot)
        elif args.model == "cxr-lungs":
            lungs.evaluate(folder, args.data, n_boot=args.n_boot)
        else:
            classifier.evaluate(
                folder, args.data, args.models_dir / "cxr-lungs", n_boot=args.n_boot
            )
        print(f"wrote {folder / 'model.json'} and {folder / 'MODEL_CARD.md'}")
        return 0

    command = " ".join(["python -m ai", *map(shlex.quote, argv)])
    options = {
        "seed": args.seed,
        "epochs": args.epochs,
        "max_minutes": args.max_minutes,
        "threads": args.threads,
        "command": command,
    }
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    lungs_dir = args.lungs or MODELS_DIR / "cxr-lungs"
    if args.which == "infection":
        from ai.train import infection

        out = args.out or MODELS_DIR / infection.NAME
        infection.train(args.data, out, args.cv_dir, run_cv=not args.no_cv, **options)
    elif args.which == "lungs":
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


def _finetune(args, command: str) -> int:
    from ai.train import finetune

    try:
        folder = finetune.finetune_segmentation(
            args.model,
            args.masks,
            images_dir=args.images,
            epochs=args.epochs,
            lr=args.lr,
            out_root=args.out,
            seed=args.seed,
            command=command,
        )
    except finetune.FinetuneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
