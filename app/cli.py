"""``playground train KIND ...`` runs one experiment in the foreground; ``playground serve`` starts the server;
``playground users add|list|remove`` manages who may use it (their tokens; see ``app.users``).

``playground train KIND ... --pause-at STEP`` stops after step STEP with a checkpoint file, and
``playground train --resume FILE`` goes on from it, exactly as if it had never stopped.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
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


class CommandLineError(Exception):
    """A use of the command line that cannot work; the message says why (exit status 2)."""


def fail(message: str) -> int:
    print(f"playground: error: {message}", file=sys.stderr)
    return 2


def train(args: argparse.Namespace) -> int:
    from app.config import get_settings
    from app.experiments.registry import get_experiment

    resume_from = None
    try:
        if args.resume is not None:
            spec, params, resume_from, seed = resume_params(args)
        elif args.kind is None:
            return fail("give the experiment KIND (linear, mlp or cifar), or --resume CHECKPOINT")
        else:
            spec = get_experiment(args.kind)
            params = spec.params_model.model_validate(parse_assignments(args.param or []))
            seed = args.seed if args.seed is not None else random.randrange(2**31)
    except (PlaygroundError, CommandLineError) as exc:
        return fail(str(exc))
    except ValidationError as exc:
        allowed = list(spec.params_model.model_fields)
        return fail(format_validation_error(exc, allowed))
    if args.checkpoint is not None and args.pause_at is None:
        return fail("--checkpoint names the file --pause-at writes; give --pause-at STEP too")
    if args.pause_at is not None and args.pause_at < 1:
        return fail(f"--pause-at must be a step of 1 or more, got {args.pause_at}")
    if resume_from is not None and args.pause_at is not None and args.pause_at <= resume_from.step:
        return fail(
            f"--pause-at {args.pause_at}: the checkpoint is at step {resume_from.step} already; "
            "pause at a later step"
        )

    from app.experiments.base import METRIC_FIELDS, RunContext
    from app.experiments.control_basic import PauseAtStep
    from app.experiments.devices import resolve_device
    from app.jobs.progress import ProgressBar

    settings = get_settings()
    try:
        device = resolve_device(args.device)
    except PlaygroundError as exc:
        return fail(str(exc))

    control = PauseAtStep(spec.kind, args.pause_at)
    total = getattr(params, "epochs", None)
    with ProgressBar(total=total, desc=spec.kind, disable=args.json) as bar:
        ctx = RunContext(
            seed=seed,
            device=device,
            # The bar shows metrics; a snapshot (cifar's per_class_acc dict) is not one it can print.
            emit=lambda point: bar.update({k: v for k, v in point.items() if k in METRIC_FIELDS}),
            data_dir=settings.data_dir,
            allow_download=settings.allow_download,
            cache_dir=settings.home / "cache",
            control=control,
            resume=resume_from,
        )
        status, result, error = "failed", None, None
        try:
            outcome = spec.load().run(params, ctx)
            status, result, error = outcome.status.value, outcome.result, outcome.error
        except PlaygroundError as exc:
            error = str(exc)
        except KeyboardInterrupt:
            status, error = "cancelled", "interrupted by Ctrl-C"

    checkpoint_path = None
    if status == "paused" and control.checkpoint is not None:
        from app.experiments.checkpoints import write_checkpoint

        cp = control.checkpoint
        checkpoint_path = args.checkpoint or Path(f"{spec.kind}-seed{seed}-step{cp.step}.ckpt")
        try:
            write_checkpoint(cp, checkpoint_path)
        except OSError as exc:
            status, error = "failed", f"could not write the checkpoint {str(checkpoint_path)!r}: {exc}"
            checkpoint_path = None

    report = {
        "kind": spec.kind,
        "params": params.model_dump(mode="json"),
        "seed": seed,
        "device": device,
        "status": status,
        "result": result,
        "error": error,
    }
    if resume_from is not None:
        report["resumed_from"] = {"checkpoint": str(args.resume), "step": resume_from.step}
    if checkpoint_path is not None:
        report["checkpoint"] = {"path": str(checkpoint_path), "step": control.checkpoint.step}
    if args.json:
        print(json.dumps(report))
    else:
        summary = {k: v for k, v in (result or {}).items() if not isinstance(v, (list, dict))}
        print(f"{spec.kind}: {status} (seed {seed}, device {device})")
        for key, value in summary.items():
            print(f"  {key}: {value}")
        if error:
            print(f"  error: {error}")
        if checkpoint_path is not None:
            print(f"  checkpoint: {checkpoint_path} (step {control.checkpoint.step})")
            print(f"  go on with: playground train --resume {checkpoint_path}")
    return 0 if status in ("succeeded", "diverged", "paused") else 1


def resume_params(args: argparse.Namespace) -> tuple[Any, Any, Any, int]:
    """(spec, params, checkpoint, seed) for ``--resume``: the checkpoint's kind, params and seed,
    with ``-p`` changes of live parameters; anything else exits 2 with the reason."""
    from app.errors import CheckpointInvalid
    from app.experiments.checkpoints import read_checkpoint
    from app.experiments.control_basic import with_changes
    from app.experiments.params import live_params
    from app.experiments.registry import get_experiment

    cp = read_checkpoint(args.resume, kind=args.kind)
    spec = get_experiment(cp.kind)
    params = spec.params_model.model_validate(cp.params)
    try:
        params = with_changes(params, parse_assignments(args.param or []))
    except ValidationError as exc:
        raise CommandLineError(format_validation_error(exc, live_params(spec.params_model))) from None
    except ValueError as exc:  # a parameter that is not live
        raise CommandLineError(f"resuming {str(args.resume)!r}: {exc}") from None
    seed = cp.state.get("seed")
    if not isinstance(seed, int):
        raise CheckpointInvalid(args.resume, "it does not record the seed of its run")
    if args.seed is not None and args.seed != seed:
        raise CommandLineError(
            f"--seed {args.seed}: the checkpoint's run has seed {seed}, and a resumed run keeps it (leave --seed out)"
        )
    return spec, params, cp, seed


def serve(args: argparse.Namespace) -> int:
    from app.server import serve as run_server

    return run_server(host=args.host, port=args.port, workers=args.workers)


def users(args: argparse.Namespace) -> int:
    """``users add NAME --role R`` prints the new token once; ``users list``; ``users remove NAME``.

    They work on PLAYGROUND_HOME's database, while the server runs too: it looks tokens up per request.
    """
    from app.config import get_settings
    from app.db import init_db, make_engine
    from app.models import UserRole
    from app.users import UserError, add_user, list_users, remove_user

    settings = get_settings()
    engine = make_engine(settings.database_path)
    try:
        init_db(engine)  # a new home, or one made before users existed
        if args.users_command == "add":
            token = add_user(engine, args.name, UserRole(args.role))
            if args.json:
                print(json.dumps({"name": args.name, "role": args.role, "token": token}))
            else:
                print(f"added {args.role} {args.name!r}; their token (shown only now, keep it):")
                print(token)
        elif args.users_command == "remove":
            remove_user(engine, args.name)
            print(f"removed {args.name!r}: their token no longer works; their runs stay, owned by the removed user")
        else:
            rows = [
                {
                    "name": user.name,
                    "role": user.role.value,
                    "runs": runs,
                    "created_at": user.created_at.isoformat(timespec="seconds"),
                    "removed_at": user.removed_at.isoformat(timespec="seconds") if user.removed_at else None,
                }
                for user, runs in list_users(engine)
            ]
            if args.json:
                print(json.dumps(rows))
            elif not rows:
                print(f"no users in {settings.database_path}: the server is open (or PLAYGROUND_API_TOKEN's alone)")
            else:
                width = max(len(row["name"]) for row in rows)
                for row in rows:
                    state = f"removed {row['removed_at']}" if row["removed_at"] else f"added {row['created_at']}"
                    print(f"{row['name']:<{width}}  {row['role']:<7}  {row['runs']:>4} run(s)  {state}")
    except UserError as exc:
        return fail(str(exc))
    finally:
        engine.dispose()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="playground", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p_train = sub.add_parser("train", help="run one experiment in the foreground")
    p_train.add_argument("kind", nargs="?", help="linear, mlp or cifar (with --resume: the checkpoint's)")
    p_train.add_argument("-p", "--param", action="append", metavar="NAME=VALUE", help="set a parameter")
    p_train.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p_train.add_argument("--seed", type=int, default=None, help="random seed (default: drawn and printed)")
    p_train.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p_train.add_argument(
        "--pause-at", type=int, metavar="STEP", help="stop after step STEP and write a checkpoint (status 'paused')"
    )
    p_train.add_argument(
        "--checkpoint",
        type=Path,
        metavar="PATH",
        help="where --pause-at writes (default: KIND-seedSEED-stepSTEP.ckpt in the current folder)",
    )
    p_train.add_argument(
        "--resume",
        type=Path,
        metavar="PATH",
        help="go on from this checkpoint, with its parameters and seed; -p may change the live ones (lr, epochs, ...)",
    )
    p_train.set_defaults(func=train)

    p_serve = sub.add_parser("serve", help="start the web server")
    p_serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p_serve.add_argument("--port", type=int, default=8000)
    p_serve.add_argument("--workers", type=int, default=None, help="worker processes (default: PLAYGROUND_WORKERS)")
    p_serve.set_defaults(func=serve)

    p_users = sub.add_parser(
        "users", help="who may use the server: add, list, remove (in PLAYGROUND_HOME's database)"
    )
    users_sub = p_users.add_subparsers(dest="users_command", required=True)
    p_add = users_sub.add_parser("add", help="add a user and print their token (once: only its hash is kept)")
    p_add.add_argument("name", help="1 to 64 letters, digits, '.', '_' or '-'")
    p_add.add_argument(
        "--role", choices=["student", "teacher"], required=True,
        help="student: changes only their own runs; teacher: every run",
    )  # fmt: skip
    p_add.add_argument("--json", action="store_true", help='print {"name", "role", "token"}')
    p_list = users_sub.add_parser("list", help="the users, their roles and how many runs each owns")
    p_list.add_argument("--json", action="store_true", help="print a JSON list")
    p_remove = users_sub.add_parser("remove", help="the user's token stops working; their runs stay")
    p_remove.add_argument("name")
    p_users.set_defaults(func=users)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
