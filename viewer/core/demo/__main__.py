"""``python -m viewer.core.demo OUT_DIR [--small]``: build the demo study, print its paths."""

from __future__ import annotations

import argparse
import sys

from viewer.core.demo.study import make_demo_study


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m viewer.core.demo",
        description="Write the radview demo study (synthetic chest CT + chest radiograph).",
    )
    parser.add_argument("out_dir", help="folder to write into (created if missing)")
    parser.add_argument("--small", action="store_true",
                        help="40 x 128 x 128 CT instead of 120 x 512 x 512")
    args = parser.parse_args(argv)
    demo = make_demo_study(args.out_dir, size="small" if args.small else "full")
    state = "already present" if demo["reused"] else f"written in {demo['seconds']:.1f} s"
    print(f"radview demo study in {demo['root']} ({state})")
    ct = demo["ct"]
    print(f"CT: {ct['dir']} ({len(ct['files'])} files, {ct['series_description']})")
    for path in ct["files"]:
        print(f"  {path}")
    if demo["cr"]:
        print(f"CR: {demo['cr']['file']}")
    for item in demo["missing"]:
        print(f"missing: {item}", file=sys.stderr)
    print(f"manifest: {demo['manifest']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
