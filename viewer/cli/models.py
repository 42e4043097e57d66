"""``radview models list|trust|untrust``: the installed models, their integrity and trust.

Hashing and parsing only (ai.registry, ai.model_file, ai.trust): TensorFlow is never
imported and no model code runs here. ``ai`` is imported inside the commands.

- ``radview models list [--json]``: every model (shipped = ``builtin``, user models folder
  = ``user``, folders with a bad model.json too) with its version, task, source, trust
  (``ok`` nothing to trust, ``trusted``, ``needs-trust``, ``-`` unusable) and integrity
  (``ok``, ``missing``, ``mismatch``, ``damaged``, ``refused``, ``bad-spec``); one line per
  model that needs trust or is unusable says why. Exit 0, or 1 when a model is unusable.
- ``radview models trust NAME [--yes]``: shows the hashes, the custom classes and Lambda
  layers, states the risk and asks (``y``/``yes``; ``--yes`` skips the question); records
  the trust (model name + sha256 of the weights and of the custom code file). Exit 0 when
  trusted (or nothing to trust), 1 when declined or the model cannot be trusted, 2 for an
  unknown model.
- ``radview models untrust NAME``: forgets the trust. Exit 0.
"""

from __future__ import annotations

import json
import sys

from viewer.cli.inputs import PROG, UsageError

RISK = (
    "Trusting this model lets radview run the Python code listed above on this computer, "
    "with your permissions, each time the model loads (in radview's AI process). Trust only "
    "a model whose source you trust. Changing the weights or the code file revokes the trust."
)


def add_models_parser(sub) -> None:
    """Register ``models`` and its subcommands on the CLI's subparsers."""
    models = sub.add_parser("models", help="list the installed models; trust or untrust one")
    msub = models.add_subparsers(
        dest="models_command", metavar="ACTION", required=True, parser_class=type(models)
    )
    ls = msub.add_parser("list", help="models with version, task, source, trust, integrity")
    ls.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ls.set_defaults(func=cmd_models_list)
    tr = msub.add_parser("trust", help="allow a user model's custom code / Lambda layers to run")
    tr.add_argument("name", metavar="NAME", help="model name (see radview models list)")
    tr.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    tr.set_defaults(func=cmd_models_trust)
    un = msub.add_parser("untrust", help="revoke the trust given to a model")
    un.add_argument("name", metavar="NAME", help="model name")
    un.set_defaults(func=cmd_models_untrust)


def _checks():
    from ai.registry import Registry
    from ai.trust import TrustStore, check_registry

    store = TrustStore()
    registry = Registry()
    return registry, store, check_registry(registry, store)


def format_model_table(checks) -> str:
    """The table of ``models list`` and, below it, one line per model that is not ok."""
    head = ("NAME", "VERSION", "TASK", "SOURCE", "TRUST", "INTEGRITY")
    rows = [(c.name, c.version, c.task, c.source, c.trust, c.integrity) for c in checks]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in [head, *rows]]
    notes = [f"{c.name}: {c.problem}" for c in checks if c.problem]
    if not rows:
        lines.append("(no models installed)")
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


def cmd_models_list(args) -> int:
    from ai.registry import user_models_dirs

    registry, store, checks = _checks()
    if args.json:
        out = {
            "models": [c.to_json() for c in checks],
            "user_models_dirs": [str(p) for p in user_models_dirs()],
            "trust_store": str(store.path),
        }
        json.dump(out, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_model_table(checks))
        folders = ", ".join(str(p) for p in user_models_dirs())
        sys.stdout.write(f"\nuser models: {folders}; trust store: {store.path}\n")
    return 0 if all(c.integrity == "ok" for c in checks) else 1


def _find(checks, name: str):
    for c in checks:
        if c.name == name:
            return c
    known = ", ".join(c.name for c in checks) or "none installed"
    raise UsageError(f"unknown model {name!r} (models: {known})")


def describe(check) -> str:
    """What trusting ``check``'s model means: files, hashes, classes, Lambda layers."""
    from ai.trust import trust_details

    spec = check.spec
    lines = [f"model {spec.name} {spec.version} ({check.source} model, {spec.folder})"]
    lines += [f"  {label:<13} {value}" for label, value in trust_details(check)]
    return "\n".join(lines)


def _confirmed(name: str) -> bool:
    sys.stderr.write(f"Trust model {name!r}? [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    if not answer:
        sys.stderr.write("\n")
    return answer.strip().lower() in ("y", "yes")


def cmd_models_trust(args) -> int:
    from ai.trust import OK, TRUSTED, TrustError, trust_model

    _, store, checks = _checks()
    check = _find(checks, args.name)
    if check.integrity != "ok":
        print(
            f"{PROG}: error: model {check.name!r} cannot be trusted: {check.problem}",
            file=sys.stderr,
        )
        return 1
    if check.trust == OK:
        print(f"model {check.name!r} uses built-in Keras layers only: nothing to trust")
        return 0
    print(describe(check))
    print(RISK)
    if check.trust == TRUSTED:
        print(f"model {check.name!r} is already trusted (these exact files)")
        return 0
    if not args.yes and not _confirmed(check.name):
        print(
            f"model {check.name!r} not trusted (answer y to trust it, or use --yes)",
            file=sys.stderr,
        )
        return 1
    try:
        trust_model(check, store)
    except TrustError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    print(f"trusted model {check.name!r}; recorded in {store.path}")
    return 0


def cmd_models_untrust(args) -> int:
    from ai.trust import TrustStore

    store = TrustStore()
    if store.remove(args.name):
        print(f"model {args.name!r} is no longer trusted; recorded in {store.path}")
    else:
        print(f"model {args.name!r} was not trusted")
    return 0
