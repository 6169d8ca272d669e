"""``playground train KIND ...`` runs one experiment in the foreground; ``playground serve`` starts the server."""

from __future__ import annotations

import argparse
import json
import random
import sys
from typing import Any

from pydantic import ValidationError

from app.errors import PlaygroundError


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    """``-p lr=0.01 -p data=[[1,2],[3,4]]`` → ``{"lr": "0.01", "data": [[1, 2], [3, 4]]}``.

    Values stay strings unless they are JSON lists or objects; pydantic converts "0.01" to a float.
    """
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"playground: error: -p expects NAME=VALUE, got {pair!r}")
        if value[:1] in "[{":
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise SystemExit(f"playground: error: -p {name}: not valid JSON ({exc})") from None
        elif value.lower() in ("none", "null"):
            value = None
        params[name] = value
    return params


def format_validation_error(exc: ValidationError, allowed: list[str]) -> str:
    """One line per problem, naming the field, what is allowed and what was given."""
    lines = []
    for err in exc.errors():
        field = ".".join(str(part) for part in err["loc"]) or "params"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = f"unknown parameter; allowed: {', '.join(allowed)}"
        lines.append(f"  {field}: {message} (got {err.get('input')!r})")
    return "invalid parameters:\n" + "\n".join(lines)


def train(args: argparse.Namespace) -> int:
    from app.config import get_settings
    from app.experiments.registry import get_experiment

    try:
        spec = get_experiment(args.kind)
        params = spec.params_model.model_validate(parse_assignments(args.param or []))
    except PlaygroundError as exc:
        print(f"playground: error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        allowed = list(spec.params_model.model_fields)
        print(f"playground: error: {format_validation_error(exc, allowed)}", file=sys.stderr)
        return 2

    from app.experiments.base import RunContext
    from app.experiments.devices import resolve_device
    from app.jobs.progress import ProgressBar

    settings = get_settings()
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    try:
        device = resolve_device(args.device)
    except PlaygroundError as exc:
        print(f"playground: error: {exc}", file=sys.stderr)
        return 2

    total = getattr(params, "epochs", None)
    with ProgressBar(total=total, desc=spec.kind, disable=args.json) as bar:
        ctx = RunContext(
            seed=seed,
            device=device,
            emit=bar.update,
            data_dir=settings.data_dir,
            allow_download=settings.allow_download,
            cache_dir=settings.home / "cache",
        )
        status, result, error = "failed", None, None
        try:
            outcome = spec.load().run(params, ctx)
            status, result, error = outcome.status.value, outcome.result, outcome.error
        except PlaygroundError as exc:
            error = str(exc)
        except KeyboardInterrupt:
            status, error = "cancelled", "interrupted by Ctrl-C"

    report = {
        "kind": spec.kind,
        "params": params.model_dump(mode="json"),
        "seed": seed,
        "device": device,
        "status": status,
        "result": result,
        "error": error,
    }
    if args.json:
        print(json.dumps(report))
    else:
        summary = {k: v for k, v in (result or {}).items() if not isinstance(v, (list, dict))}
        print(f"{spec.kind}: {status} (seed {seed}, device {device})")
        for key, value in summary.items():
            print(f"  {key}: {value}")
        if error:
            print(f"  error: {error}")
    return 0 if status in ("succeeded", "diverged") else 1


def serve(args: argparse.Namespace) -> int:
    from app.server import serve as run_server

    return run_server(host=args.host, port=args.port, workers=args.workers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="playground", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p_train = sub.add_parser("train", help="run one experiment in the foreground")
    p_train.add_argument("kind", help="linear, mlp or cifar")
    p_train.add_argument("-p", "--param", action="append", metavar="NAME=VALUE", help="set a parameter")
    p_train.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p_train.add_argument("--seed", type=int, default=None, help="random seed (default: drawn and printed)")
    p_train.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p_train.set_defaults(func=train)

    p_serve = sub.add_parser("serve", help="start the web server")
    p_serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p_serve.add_argument("--port", type=int, default=8000)
    p_serve.add_argument("--workers", type=int, default=None, help="worker processes (default: PLAYGROUND_WORKERS)")
    p_serve.set_defaults(func=serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
