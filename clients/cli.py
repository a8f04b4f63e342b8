"""``lepton-alloc``: the command line for finance users and scripts.

Data goes to stdout (a table, or JSON with ``--json``); messages and progress go to stderr;
failures exit non-zero (1 = the request failed, 2 = invalid input/usage, 3 = the server is
unreachable). Every option that names a server also reads ``LEPTON_SERVER``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any
from collections.abc import Sequence

from .report import render_result
from .safe_text import printable

EXIT_FAILED, EXIT_INVALID, EXIT_UNREACHABLE = 1, 2, 3
# how every command that talks to a server connects: flag, the environment variable the client
# library reads when the flag is not given, help
CONNECTION_FLAGS = [
    ("--token", "LEPTON_TOKEN", "API token, sent as 'authorization: Bearer ...'"),
    ("--tls-ca", "LEPTON_TLS_CA", "CA certificate (PEM) of the server's: connect with TLS"),
    ("--tls-cert", "LEPTON_CLIENT_CERT", "client certificate (PEM) for mutual TLS, with --tls-key"),
    ("--tls-key", "LEPTON_CLIENT_KEY", "the client certificate's private key (PEM)"),
    ("--tls-server-name", "LEPTON_TLS_SERVER_NAME", "the name in the server's certificate, if not the address's host"),
]


def _connection_dest(flag: str) -> str:
    return "connect_" + flag.lstrip("-").replace("-", "_")


def _connection_metavar(flag: str) -> str:
    return {"--token": "TOKEN", "--tls-server-name": "NAME"}.get(flag, "PATH")


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")


def _print_violations(exc: Any) -> None:
    _err(f"error: {getattr(exc, 'message', None) or 'invalid scenario'}")
    for v in getattr(exc, "violations", []):
        field = getattr(v, "field", None) or v[0]
        desc = getattr(v, "description", None) or v[1]
        _err(printable(f"  {field}: {desc}"))


# ----------------------------------------------------------------------------- local commands


def cmd_solve(args: argparse.Namespace) -> int:
    from lepton_alloc.models import solve_scenario

    if args.server:
        return _remote(args, _remote_solve)
    sc = _scenario_for_solve(args)
    if sc is None:
        return EXIT_INVALID
    from .progress import SolveProgress

    with SolveProgress(f"solving {sc.name}", enabled=None if not args.quiet else False) as progress:
        result = solve_scenario(sc, time_limit=args.time_limit, mip_rel_gap=args.gap, on_progress=progress)
    from .xlsx_cli import maybe_export

    maybe_export(args, result, sc)
    return _emit_result(args, result.to_dict())


def _scenario_for_solve(args: argparse.Namespace) -> Any:
    """The scenario file, with a market-data fit merged when ``--market-data`` is given; None
    (after printing every problem with its field path or CSV row) when it is not valid."""
    from lepton_alloc.models import ScenarioError

    from .xlsx_cli import load_scenario_any as load_scenario_file  # YAML, JSON or a workbook

    if getattr(args, "market_data", None):
        from .fit_cli import load_for_solve

        return load_for_solve(args)  # prints every problem itself, row-numbered
    try:
        return load_scenario_file(args.file)
    except ScenarioError as exc:
        _err(f"error: {args.file} is not a valid scenario:")
        for v in exc.violations:
            _err(f"  {v.field}: {v.description}")
        return None


def _write_output(args: argparse.Namespace, d: dict[str, Any]) -> None:
    if getattr(args, "output", None):
        with open(args.output, "w", encoding="utf-8") as fh:
            json.dump(d, fh, indent=2, allow_nan=False)
        _err(f"wrote {args.output}")


def _emit_result(args: argparse.Namespace, d: dict[str, Any]) -> int:
    _write_output(args, d)
    if args.json:
        _print_json(d)
    else:
        print(render_result(d))
    return 0 if d["status"] in ("optimal", "feasible", "infeasible", "unbounded") else EXIT_FAILED


def _progress_line(p: Any) -> str:
    """One line of solver progress (a local solve's and a watched job's are the same Progress)."""
    gap_s = "-" if p.gap is None or p.gap > 1e9 else f"{100 * p.gap:.3f}%"
    obj = "-" if p.objective is None else f"{p.objective:,.3f}"
    bound = "-" if p.best_bound is None else f"{p.best_bound:,.3f}"
    source = "  (head start: the service's first plan, before HiGHS)" if p.head_start else ""
    return f"  {p.elapsed_seconds:6.1f}s  {p.kind:9s}  incumbent {obj}  bound {bound}  gap {gap_s}{source}"


def cmd_generate(args: argparse.Namespace) -> int:
    from lepton_alloc.models.generator import main as gen_main

    argv = ["--markets", str(args.markets), "--years", str(args.years), "--seed", str(args.seed)]
    if args.out:
        argv += ["--out", args.out]
    return int(gen_main(argv) or 0)


def cmd_validate(args: argparse.Namespace) -> int:
    from lepton_alloc.models import ScenarioError

    from .xlsx_cli import load_scenario_any as load_scenario_file  # YAML, JSON or a workbook

    try:
        sc = load_scenario_file(args.file)
    except ScenarioError as exc:
        for v in exc.violations:
            _err(printable(f"{v.field}: {v.description}"))
        return EXIT_INVALID
    print(f"{args.file}: valid ({len(sc.markets)} markets, {sc.horizon_years} years, sha256 {sc.sha256()})")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    """Step values of every limit and what each market is worth: locally, or for a server's job."""

    if args.server:
        def run(client: Any, a: argparse.Namespace) -> int:
            result = client.explain(a.target, relative_step=a.step, time_budget_seconds=a.time_budget,
                                    step_values=not a.no_steps, market_values=not a.no_markets)
            return _emit_explained(a, result.to_dict())

        return _remote(args, run)
    from lepton_alloc.models import ScenarioError, solve_scenario

    from .xlsx_cli import load_scenario_any as load_scenario_file  # YAML, JSON or a workbook
    from lepton_alloc.models.whatif import market_values, step_values

    try:
        sc = load_scenario_file(args.target)
    except ScenarioError as exc:
        _print_violations(exc)
        return EXIT_INVALID
    result = solve_scenario(sc, time_limit=args.time_limit, mip_rel_gap=args.gap)
    if result.objective_value is not None:
        _err(f"explaining with re-solves (time budget {args.time_budget:g} s; a server spreads them over its workers) …")
        share = args.time_budget / (int(not args.no_steps) + int(not args.no_markets) or 1)
        if not args.no_steps:
            steps = step_values(sc, result, relative_step=args.step, time_budget=share)
            for lim in result.limits:
                lim.steps = steps.get(lim.constraint, [])
        if not args.no_markets:
            result.market_values = market_values(sc, result, time_budget=share)
    return _emit_explained(args, result.to_dict())


def _emit_explained(args: argparse.Namespace, d: dict[str, Any]) -> int:
    from .report import render_market_values

    _write_output(args, d)
    if args.json:
        _print_json(d)
        return 0
    print(render_result(d))
    worth = render_market_values(d)
    if worth:
        print("\n" + worth)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Two plans side by side: two scenario files solved here, or two jobs of a server."""
    from .report import render_comparison

    def show(comparison: Any) -> int:
        if args.json:
            _print_json(comparison.to_dict())
        else:
            print(render_comparison(comparison.to_dict()))
        return 0

    if args.server:
        def job_of(client: Any, ref: str) -> str:
            """A job id as it is; a scenario file or a stored ``name@revision`` is solved first."""
            if os.path.isfile(ref):
                with open(ref, encoding="utf-8") as fh:
                    handle = client.submit(document=fh.read(), time_limit_seconds=args.time_limit, mip_rel_gap=args.gap)
            elif "@" in ref:
                name, _, rev = ref.partition("@")
                handle = client.submit(scenario_name=name, revision=None if rev in ("", "latest") else int(rev),
                                       time_limit_seconds=args.time_limit, mip_rel_gap=args.gap)
            else:
                return ref
            _err(f"solving {ref} as job {handle.job_id} …")
            handle.result()
            return str(handle.job_id)

        return _remote(args, lambda client, a: show(client.compare(job_of(client, a.a), job_of(client, a.b))))
    from lepton_alloc.models import ScenarioError, solve_scenario

    from .xlsx_cli import load_scenario_any as load_scenario_file  # YAML, JSON or a workbook
    from lepton_alloc.models.compare import compare

    try:
        scenarios = [load_scenario_file(args.a), load_scenario_file(args.b)]
    except ScenarioError as exc:
        _print_violations(exc)
        return EXIT_INVALID
    results = [solve_scenario(sc, time_limit=args.time_limit, mip_rel_gap=args.gap) for sc in scenarios]
    return show(compare(results[0], results[1], scenarios[0], scenarios[1]))


def cmd_schema(args: argparse.Namespace) -> int:
    """The JSON Schema of a scenario file, derived from the one schema declaration."""
    from lepton_alloc.models.scenario import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
        _err(f"wrote {args.out}; point an editor at it with a first line "
             f"'# yaml-language-server: $schema=<path to {os.path.basename(args.out)}>'")
    else:
        sys.stdout.write(text)
    return 0


# ----------------------------------------------------------------------------- server commands


def cmd_serve(args: argparse.Namespace) -> int:
    from lepton_alloc.server.app import serve_forever
    from lepton_alloc.server.config import load_config

    overrides = {k: getattr(args, k) for k in ("address", "workers", "queue_size", "max_time_limit",
                                               "database", "metrics_port", "grace", "sweep_executor", "ray_actors",
                                               "tls_cert", "tls_key", "tls_client_ca", "allow_insecure_bind",
                                               "allow_anonymous_loopback")}
    cfg = load_config(args.config, overrides)
    return serve_forever(cfg)


def cmd_tokens(args: argparse.Namespace) -> int:
    """API tokens, straight in the server's database: create (the secret is shown once), list, revoke."""
    import time

    from lepton_alloc.server.config import load_config
    from lepton_alloc.server.store import NotFound, StoreUnavailable, open_store

    try:
        url = args.database or load_config(args.config).database
        # a mistyped SQLite file would be a new empty database the server never reads
        path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else None if "://" in url else url
        if path and path != ":memory:" and not os.path.exists(path):
            _err(f"error: database {path} does not exist (check --database, or start the server on it once)")
            return EXIT_INVALID
        store = open_store(url)
    except (StoreUnavailable, ValueError, OSError) as exc:
        _err(f"error: {exc}")
        return EXIT_INVALID

    def when(t: float | None) -> str:
        return "" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))

    def public(rec: Any) -> dict[str, Any]:
        return {"token_id": rec.token_id, "tenant": rec.tenant, "name": rec.name, "created_at": rec.created_at,
                "revoked_at": rec.revoked_at}

    with store:
        try:
            if args.tokens_action == "create":
                rec, secret = store.create_token(args.tenant, args.name)
                _err(f"created token {rec.token_id} of tenant {rec.tenant} ({rec.name}); the token follows and is "
                     "NOT SHOWN AGAIN - keep it now (clients: --token or env LEPTON_TOKEN)")
                if args.json:
                    _print_json({**public(rec), "token": secret})
                else:
                    print(secret, flush=True)
            elif args.tokens_action == "list":
                recs = store.list_tokens(args.tenant)
                if args.json:
                    _print_json([public(r) for r in recs])
                else:
                    rows = [("TOKEN_ID", "TENANT", "NAME", "CREATED", "REVOKED")] + [
                        (r.token_id, r.tenant, r.name, when(r.created_at), when(r.revoked_at)) for r in recs]
                    widths = [max(len(row[i]) for row in rows) for i in range(5)]
                    for row in rows:
                        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
            else:
                rec = store.revoke_token(args.token_id)
                _err(f"token {rec.token_id} of tenant {rec.tenant} ({rec.name}) revoked at {when(rec.revoked_at)}")
        except (NotFound, ValueError) as exc:
            _err(f"error: {exc.args[0] if exc.args else exc}")
            return EXIT_FAILED
        except StoreUnavailable as exc:
            _err(f"error: {exc}")
            return EXIT_INVALID
    return 0


def _remote(args: argparse.Namespace, fn: Any) -> int:
    from .client import AllocationClient, AllocationError

    address = args.server or os.environ.get("LEPTON_SERVER", "127.0.0.1:50051")
    try:  # token and certificates: the global flags (see main) or LEPTON_TOKEN, LEPTON_TLS_*
        client = AllocationClient(address, timeout=getattr(args, "timeout", None) or 600.0)
    except ValueError as exc:  # an unreadable certificate file, a certificate without its key
        _err(f"error: {exc}")
        return EXIT_INVALID
    from lepton_alloc.models.scenario import ScenarioError

    try:
        with client:
            return int(fn(client, args) or 0)
    except ScenarioError as exc:  # a local scenario file (submit, scenarios create / update) that is not valid
        _err(f"error: {getattr(args, 'file', None) or 'the scenario'} is not a valid scenario:")
        for v in exc.violations:
            _err(printable(f"  {v.field}: {v.description}"))
        return EXIT_INVALID
    except AllocationError as exc:
        if exc.violations:
            _print_violations(exc)
            return EXIT_INVALID
        _err(f"error: {exc.code_name}: {exc.message}")
        return EXIT_UNREACHABLE if exc.code_name in ("UNAVAILABLE",) else EXIT_FAILED


def _remote_solve(client: Any, args: argparse.Namespace) -> int:
    sc = _scenario_for_solve(args)
    if sc is None:
        return EXIT_INVALID
    # submitted and watched (not the unary Solve) so that a long solve shows its progress
    job = client.submit(sc, time_limit_seconds=args.time_limit, mip_rel_gap=args.gap)
    try:
        return _watch(client, job.job_id, args, quiet_states=True)
    except KeyboardInterrupt:
        client.cancel(job.job_id)
        raise


def cmd_submit(args: argparse.Namespace) -> int:
    def run(client: Any, a: argparse.Namespace) -> int:
        from .xlsx_cli import load_scenario_any as load_scenario_file  # YAML, JSON or a workbook

        if a.stored:
            job = client.submit(scenario_name=a.file, revision=a.revision, request_id=a.request_id,
                                time_limit_seconds=a.time_limit, mip_rel_gap=a.gap)
        else:
            job = client.submit(load_scenario_file(a.file), request_id=a.request_id,
                                time_limit_seconds=a.time_limit, mip_rel_gap=a.gap)
        if a.json and not a.watch:
            _print_json(job.info.to_dict())
        elif not a.watch:
            print(job.job_id)
        _err(f"submitted job {job.job_id} ({job.state.lower()})")
        if a.watch:
            return _watch(client, job.job_id, a)
        return 0

    return _remote(args, run)


def _watch(client: Any, job_id: str, args: argparse.Namespace, quiet_states: bool = False) -> int:
    """Follow a job to its end: a live progress line on a terminal, log lines otherwise."""
    from .progress import SolveProgress

    final = None
    with SolveProgress(f"job {job_id[:8]}") as live:
        for ev in client.watch(job_id):
            if ev.kind == "state" and not quiet_states:
                _err(f"[job {job_id[:8]}] {(ev.state or '').lower()}")
            elif ev.kind == "progress" and ev.progress is not None:
                if live.enabled:
                    live(ev.progress)
                elif not quiet_states:
                    _err(_progress_line(ev.progress))
            elif ev.kind == "done":
                final = ev.job
                if not quiet_states or (final is not None and final.error):
                    _err(f"[job {job_id[:8]}] {(ev.state or '').lower()}" + (f": {final.error}" if final and final.error else ""))
    if final is None or final.result is None:
        return EXIT_FAILED
    if getattr(args, "xlsx", None):
        from .xlsx_cli import maybe_export

        maybe_export(args, final.result)
    return _emit_result(args, final.result.to_dict())


def cmd_watch(args: argparse.Namespace) -> int:
    return _remote(args, lambda c, a: _watch(c, a.job_id, a))


def cmd_cancel(args: argparse.Namespace) -> int:
    def run(client: Any, a: argparse.Namespace) -> int:
        job = client.cancel(a.job_id)
        print(job.state.lower())
        return 0

    return _remote(args, run)


def cmd_job(args: argparse.Namespace) -> int:
    def run(client: Any, a: argparse.Namespace) -> int:
        job = client.get_job(a.job_id)
        if a.json:
            _print_json(job.to_dict())
        elif job.result is not None:
            print(f"job {job.job_id}: {job.state.lower()}")
            print(render_result(job.result.to_dict()))
        else:
            print(printable(f"job {job.job_id}: {job.state.lower()} {job.error}"))
        return 0

    return _remote(args, run)


def cmd_jobs(args: argparse.Namespace) -> int:
    def run(client: Any, a: argparse.Namespace) -> int:
        from .report import table

        jobs, _ = client.list_jobs(state=a.state, page_size=a.limit)
        if a.json:
            _print_json([j.to_dict() for j in jobs])
            return 0
        rows = [[j.job_id, j.state.lower(), j.scenario_name, j.result.status if j.result else "",
                 _fmt_obj(j.result.objective_value if j.result else None), _when(j.create_time)] for j in jobs]
        print(table(["job", "state", "scenario", "status", "objective", "created"], rows))
        return 0

    return _remote(args, run)


def _when(ts: float | None) -> str:
    import time

    return "" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _fmt_obj(v: Any) -> str:
    return "" if v is None else f"{v:,.3f}"


def cmd_scenarios(args: argparse.Namespace) -> int:
    def run(client: Any, a: argparse.Namespace) -> int:
        from .xlsx_cli import load_scenario_any as load_scenario_file  # YAML, JSON or a workbook
        from lepton_alloc.models.loader import dump_scenario

        from .report import table

        if a.action == "list":
            items, _ = client.list_scenarios(page_size=1000)
            if a.json:
                _print_json([s.to_dict() for s in items])
            else:
                print(table(["name", "revision", "markets", "sha256", "created", "description"],
                            [[s.name, s.revision, len(s.scenario.markets), s.sha256[:12], _when(s.create_time),
                              s.description] for s in items]))
        elif a.action in ("create", "update"):
            sc = load_scenario_file(a.file)
            fn = client.create_scenario if a.action == "create" else client.update_scenario
            s = fn(a.name, sc, description=a.description or "")
            print(f"{s.name} revision {s.revision}")
        elif a.action == "get":
            s = client.get_scenario(a.name, revision=a.revision)
            if a.json:
                _print_json(s.scenario.to_dict())
            else:
                print(dump_scenario(s.scenario), end="")
        elif a.action == "delete":
            client.delete_scenario(a.name)
            _err(f"deleted {a.name}")
        return 0

    return _remote(args, run)


def cmd_demo(args: argparse.Namespace) -> int:
    """The README's main command: local server + built-in example, submitted and watched."""
    from lepton_alloc.models.loader import load_builtin_example
    from lepton_alloc.server.app import start_server
    from lepton_alloc.server.config import load_config

    from .client import AllocationClient

    import logging

    from lepton_alloc.server.app import setup_logging

    setup_logging(logging.WARNING)  # the demo's own messages are enough; server logs only on trouble
    data_dir = os.path.expanduser(os.environ.get("LEPTON_DATA_DIR", "~/.local/share/lepton-alloc"))
    os.makedirs(data_dir, exist_ok=True)
    cfg = load_config(None, {"address": "127.0.0.1:0", "database": args.database or os.path.join(data_dir, "demo.db"),
                             "workers": 1, "metrics_port": 0})
    _err(f"starting a local server (database {cfg.database}) …")
    running = start_server(cfg)
    try:
        address = f"127.0.0.1:{running.port}"
        _err(f"server listening on {address}; submitting the built-in example (examples/global_expansion.yaml)")
        # the local server: plaintext on loopback, anonymous (no token or certificate from the environment)
        with AllocationClient(address, timeout=600.0, token="", tls_ca="", tls_cert="", tls_key="") as client:
            job = client.submit(load_builtin_example(), time_limit_seconds=args.time_limit)
            _err(f"job {job.job_id} submitted")
            return _watch(client, job.job_id, args)
    finally:
        running.stop(grace=2.0)


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lepton-alloc", description="Lepton Allocator: market-entry allocation with Pyomo + HiGHS.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    # how every command that talks to a server connects (given before the command, or after it)
    # (`serve` has --tls-cert/--tls-key of its own: the server's certificate)
    for flag, env, text in CONNECTION_FLAGS:
        p.add_argument(flag, dest=_connection_dest(flag), metavar=_connection_metavar(flag), default=None,
                       help=f"{text} (env {env})")
    sub = p.add_subparsers(dest="command", required=True)
    _add_parser = sub.add_parser

    def add_parser(name: str, **kw: Any) -> argparse.ArgumentParser:  # every command shows its defaults in --help
        return _add_parser(name, formatter_class=argparse.ArgumentDefaultsHelpFormatter, **kw)

    sub.add_parser = add_parser  # type: ignore[method-assign]

    def server_opt(sp: argparse.ArgumentParser, required: bool = False) -> None:
        sp.add_argument("--server", default=os.environ.get("LEPTON_SERVER") if required else None,
                        help="HOST:PORT of a Lepton server (env LEPTON_SERVER)")
        sp.add_argument("--timeout", type=float, default=None, help="per-call timeout in seconds")
        for flag, env, text in CONNECTION_FLAGS:  # SUPPRESS: given before the command, the value is kept
            sp.add_argument(flag, dest=_connection_dest(flag), metavar=_connection_metavar(flag),
                            default=argparse.SUPPRESS, help=f"{text} (env {env})")

    def solve_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--time-limit", type=float, default=None, help="override solver.time_limit_seconds")
        sp.add_argument("--gap", type=float, default=None, help="override solver.mip_rel_gap")
        sp.add_argument("--json", action="store_true", help="print the full result as JSON")
        sp.add_argument("-o", "--output", default=None, help="also write the full result as JSON to this file")

    s = sub.add_parser("solve", help="solve a scenario file (locally, or on --server)")
    s.add_argument("file")
    solve_opts(s)
    server_opt(s)
    s.add_argument("--quiet", action="store_true", help="no progress on stderr")
    from .fit_cli import add_market_data_options

    add_market_data_options(s)  # --market-data CSV, --col-market/-year/-revenue/-total/-mode, --confidence
    from .xlsx_cli import add_xlsx_option

    add_xlsx_option(s)  # --xlsx OUT: the result as a workbook too
    s.set_defaults(func=cmd_solve)

    s = sub.add_parser("validate", help="check a scenario file and list every problem")
    s.add_argument("file")
    s.set_defaults(func=cmd_validate)

    s = sub.add_parser("explain", help="what each limit and each market is worth (re-solves), locally or for a job")
    s.add_argument("target", help="a scenario file; with --server, a job id")
    s.add_argument("--step", type=float, default=0.05, help="relative step for moving each limit")
    s.add_argument("--time-budget", dest="time_budget", type=float, default=60.0, help="seconds for all re-solves")
    s.add_argument("--no-steps", dest="no_steps", action="store_true", help="leave out the step values")
    s.add_argument("--no-markets", dest="no_markets", action="store_true", help="leave out the market values")
    solve_opts(s)
    server_opt(s)
    s.set_defaults(func=cmd_explain)

    s = sub.add_parser("compare", help="two plans side by side: scenario files, or with --server also job ids and "
                                       "stored scenarios (NAME@REVISION)")
    s.add_argument("a", help="plan A: a scenario file; with --server also a job id or NAME@REVISION")
    s.add_argument("b", help="plan B: as plan A")
    solve_opts(s)
    server_opt(s)
    s.set_defaults(func=cmd_compare)

    s = sub.add_parser("schema", help="print the JSON Schema of scenario files (editor completion and checks)")
    s.add_argument("-o", "--out", default=None, help="write it to this file instead of stdout")
    s.set_defaults(func=cmd_schema)

    s = sub.add_parser("generate", help="write a seeded synthetic scenario")
    s.add_argument("--markets", type=int, default=50)
    s.add_argument("--years", type=int, default=10)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default=None)
    s.set_defaults(func=cmd_generate)

    s = sub.add_parser("serve", help="run the gRPC server")
    s.add_argument("--config", default=os.environ.get("LEPTON_CONFIG"), help="YAML config file (env LEPTON_CONFIG)")
    s.add_argument("--address", default=None, help="HOST:PORT to listen on (env LEPTON_ADDRESS)")
    s.add_argument("--workers", type=int, default=None, help="solver worker processes (env LEPTON_WORKERS)")
    s.add_argument("--queue-size", dest="queue_size", type=int, default=None, help="jobs waiting at most (env LEPTON_QUEUE_SIZE)")
    s.add_argument("--max-time-limit", dest="max_time_limit", type=float, default=None,
                   help="cap on any solve's time limit, seconds (env LEPTON_MAX_TIME_LIMIT)")
    s.add_argument("--database", default=None, help="SQLite file or sqlite:///path (env LEPTON_DATABASE)")
    s.add_argument("--metrics-port", dest="metrics_port", type=int, default=None,
                   help="Prometheus metrics HTTP port, 0 = off (env LEPTON_METRICS_PORT)")
    s.add_argument("--grace", type=float, default=None, help="graceful-shutdown grace period, seconds")
    s.add_argument("--sweep-executor", dest="sweep_executor", default=None,
                   help="where sweep variants run: ray://HOST:PORT (a Ray cluster), auto, or local (a Ray runtime "
                        "here); default the worker pool (env LEPTON_SWEEP_EXECUTOR)")
    s.add_argument("--ray-actors", dest="ray_actors", type=int, default=None,
                   help="with a Ray sweep executor: actors, each keeping a model warm (env LEPTON_RAY_ACTORS)")
    s.add_argument("--tls-cert", dest="tls_cert", default=None,
                   help="TLS certificate (PEM), with --tls-key; default plaintext (env LEPTON_TLS_CERT)")
    s.add_argument("--tls-key", dest="tls_key", default=None, help="the TLS certificate's private key (PEM) "
                                                                   "(env LEPTON_TLS_KEY)")
    s.add_argument("--tls-client-ca", dest="tls_client_ca", default=None,
                   help="mutual TLS: every client must present a certificate signed by this CA (PEM) "
                        "(env LEPTON_TLS_CLIENT_CA)")
    s.add_argument("--allow-insecure-bind", dest="allow_insecure_bind", action=argparse.BooleanOptionalAction,
                   default=None, help="listen on a non-loopback address without TLS (logs a warning) "
                                      "(env LEPTON_ALLOW_INSECURE_BIND)")
    s.add_argument("--allow-anonymous-loopback", dest="allow_anonymous_loopback",
                   action=argparse.BooleanOptionalAction, default=None,
                   help="accept callers without an API token from this machine, as tenant 'local'; on unless "
                        "configured off - turn off behind a local proxy (env LEPTON_ALLOW_ANONYMOUS_LOOPBACK)")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("tokens", help="API tokens in the server's database: create, list, revoke")
    tokens = s.add_subparsers(dest="tokens_action", required=True)

    def token_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--database", default=None, help="the server's database; default as `serve` resolves it "
                                                         "(--config, env LEPTON_DATABASE, lepton-alloc.db)")
        sp.add_argument("--config", default=os.environ.get("LEPTON_CONFIG"), help="the server's YAML config file "
                                                                                  "(env LEPTON_CONFIG)")
        sp.set_defaults(func=cmd_tokens)

    t = tokens.add_parser("create", help="a new token of a tenant; prints the secret once")
    t.add_argument("--tenant", required=True, help="the tenant whose records the token reads and writes")
    t.add_argument("--name", required=True, help="who or what uses it (the audit names tenant/name)")
    t.add_argument("--json", action="store_true", help="print the record and the secret as JSON")
    token_opts(t)
    t = tokens.add_parser("list", help="tokens (all, or one tenant's), revoked ones included; never the secrets")
    t.add_argument("--tenant", default=None)
    t.add_argument("--json", action="store_true")
    token_opts(t)
    t = tokens.add_parser("revoke", help="revoke a token at once")
    t.add_argument("token_id")
    token_opts(t)

    s = sub.add_parser("demo", help="start a local server, solve the built-in example, print the allocation")
    s.add_argument("--time-limit", type=float, default=None)
    s.add_argument("--database", default=None)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("submit", help="submit a solve job to a server")
    s.add_argument("file", help="scenario file, or a stored scenario name with --stored")
    s.add_argument("--stored", action="store_true", help="FILE names a scenario stored on the server")
    s.add_argument("--revision", type=int, default=None)
    s.add_argument("--request-id", default="", help="idempotency key: a retry with the same id starts no second solve")
    s.add_argument("--watch", action="store_true", help="watch the job and print its result")
    solve_opts(s)
    server_opt(s, True)
    s.set_defaults(func=cmd_submit)

    s = sub.add_parser("watch", help="watch a job's live progress, then print its result")
    s.add_argument("job_id")
    s.add_argument("--json", action="store_true")
    server_opt(s, True)
    s.set_defaults(func=cmd_watch)

    s = sub.add_parser("cancel", help="cancel a job")
    s.add_argument("job_id")
    server_opt(s, True)
    s.set_defaults(func=cmd_cancel)

    s = sub.add_parser("job", help="show one job")
    s.add_argument("job_id")
    s.add_argument("--json", action="store_true")
    server_opt(s, True)
    s.set_defaults(func=cmd_job)

    s = sub.add_parser("jobs", help="list jobs")
    s.add_argument("--state", default=None, choices=["queued", "running", "succeeded", "failed", "cancelled"])
    s.add_argument("--limit", type=int, default=50)
    s.add_argument("--json", action="store_true")
    server_opt(s, True)
    s.set_defaults(func=cmd_jobs)

    s = sub.add_parser("scenarios", help="stored scenarios: list, get, create, update, delete")
    s.add_argument("action", choices=["list", "get", "create", "update", "delete"])
    s.add_argument("name", nargs="?")
    s.add_argument("file", nargs="?")
    s.add_argument("--revision", type=int, default=None)
    s.add_argument("--description", default="")
    s.add_argument("--json", action="store_true")
    server_opt(s, True)
    s.set_defaults(func=cmd_scenarios)
    from .sweep_cli import register as register_sweep

    register_sweep(sub)
    from .batch import register as register_batch

    register_batch(sub)
    from .fit_cli import register as register_fit_growth

    register_fit_growth(sub)
    from .xlsx_cli import register as register_xlsx

    register_xlsx(sub)
    from .report_cli import register as register_report

    register_report(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "scenarios":
        if args.action != "list" and not args.name:
            parser.error("scenarios " + args.action + " needs a NAME")
        if args.action in ("create", "update") and not args.file:
            parser.error(f"scenarios {args.action} needs NAME FILE")
    # the global connection flags reach every client the command builds through the environment
    # the client reads (LEPTON_TOKEN, LEPTON_TLS_*), set for this command only
    given = {env: str(getattr(args, _connection_dest(flag))) for flag, env, _ in CONNECTION_FLAGS
             if getattr(args, _connection_dest(flag), None) is not None}
    saved = {k: os.environ.get(k) for k in given}
    os.environ.update(given)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        return 0
    finally:
        for k, old in saved.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old


if __name__ == "__main__":
    sys.exit(main())
