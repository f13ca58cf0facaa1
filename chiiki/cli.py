"""Command line: migrate, seed-demo, and the operator jobs (python -m chiiki.cli --help)."""

from __future__ import annotations

import argparse
import sys


def cmd_migrate(_args) -> int:
    from chiiki.services.db import migrate

    migrate()
    print("database is at the newest migration")
    return 0


def cmd_seed_demo(_args) -> int:
    from chiiki.seed import DEMO_LOGINS, DEMO_PASSWORD, seed_demo

    ids = seed_demo()
    if ids is None:
        print("database already has accounts; demo data not added")
        return 0
    print("demo city created. Logins (password for all: %s):" % DEMO_PASSWORD)
    for login, who in DEMO_LOGINS:
        print(f"  {login:24} {who}")
    return 0


def cmd_backup(args) -> int:
    from chiiki.backup import backup

    print(f"backup written to {backup(args.path)}")
    return 0


def cmd_restore(args) -> int:
    from chiiki.backup import restore

    print(f"database restored from {args.path} into {restore(args.path)}")
    return 0


def cmd_jobs(_args) -> int:
    from chiiki.jobs import run_all_once

    run_all_once()
    print("mail queue, inquiry delivery and purge jobs ran once")
    return 0


def cmd_reset_link(args) -> int:
    from chiiki.i18n import fmt_dt
    from chiiki.services import password_reset
    from chiiki.services.errors import ServiceError

    try:
        link, expires = password_reset.link_for_counter(args.login_id)
    except ServiceError as e:
        print(f"no link: {_said(e)}", file=sys.stderr)
        return 1
    print(f"one-time link for {args.login_id} (valid until {fmt_dt(expires, 'en')} Japan time):\n{link}")
    return 0


def cmd_make_staff(args) -> int:
    from chiiki.services import accounts
    from chiiki.services.errors import ServiceError

    try:
        name = accounts.make_city_staff(args.login_id, args.department)
    except ServiceError as e:
        print(f"not made staff: {_said(e)}", file=sys.stderr)
        return 1
    print(f"{args.login_id} ({name}) is city staff now" + (f", department {args.department}" if args.department
                                                            else ""))
    return 0


def _said(e) -> str:
    """A service's refusal in words (English, for the operator)."""
    from chiiki.i18n import tr

    return tr("en", e.key, **e.params)


# Commands that hand their own arguments to another module's argparse.
PASS_THROUGH = {
    "seed-city": ("chiiki.scale", "fill an empty database with a synthetic city at Asahikawa scale (--db --scale --seed)"),
    "bench-city": ("chiiki.bench.city", "hot-path and websocket figures on a generated city (--db --clients --seconds)"),
    "bench-circulars": ("chiiki.bench.circulars", "circular send, status, inbox and export figures"),
    "bench-roster": ("chiiki.bench.roster", "roster page, search and export figures"),
    "bench-reliability": ("chiiki.bench.reliability", "exactly-once confirmations under load, optionally across a "
                          "killed worker (--seconds --clients --kill-worker-at)"),
}

COMMANDS = {
    "migrate": (cmd_migrate, "apply database migrations (a deploy step)"),
    "seed-demo": (cmd_seed_demo, "add the demo city when the database has no accounts"),
    "backup": (cmd_backup, "copy the SQLite database to PATH while the app runs"),
    "restore": (cmd_restore, "replace the SQLite database with the backup at PATH (stop the app first)"),
    "jobs": (cmd_jobs, "run the background jobs once (mail queue, inquiries, purge)"),
    "make-staff": (cmd_make_staff, "make the registered account LOGIN_ID city staff (the first one of a new city "
                   "too), optionally of --department NAME (the inquiries it routes)"),
    "reset-link": (cmd_reset_link, "print a one-time link that sets a new password for LOGIN_ID (at the city's "
                   "counter, for someone without an email address, identity checked there; an account with an "
                   "address is told by mail that a link was made)"),
}
PATH_ARG = {"backup", "restore"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in PASS_THROUGH:
        import importlib

        return importlib.import_module(PASS_THROUGH[argv[0]][0]).main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m chiiki.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_module, help_text) in PASS_THROUGH.items():
        sub.add_parser(name, help=help_text)
    for name, (_fn, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if name in PATH_ARG:
            p.add_argument("path")
        if name in ("reset-link", "make-staff"):
            p.add_argument("login_id")
        if name == "make-staff":
            p.add_argument("--department", default="")
    args = parser.parse_args(argv)
    return COMMANDS[args.command][0](args)


if __name__ == "__main__":
    sys.exit(main())
