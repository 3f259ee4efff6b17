"""The ``solarpipe`` command: run, resume, export, tasks, weblog, simulate, demo.

Exit codes: 0 ok, 1 a stage failed, 2 bad input (nothing ran, or the run
stopped before the bad stage; nothing already written is lost).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import __version__
from .errors import EXIT_BAD_INPUT, EXIT_OK, EXIT_STAGE_FAILED, BadInputError, SolarpipeError

LOG = logging.getLogger("solarpipe")


def _progress(msg: str) -> None:
    print(f"[solarpipe] {msg}", flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    from .recipe import format_plan, load_recipe
    from .runner import new_context, rerun_context, run_recipe

    recipe = load_recipe(args.recipe)
    if args.dry_run:
        print(format_plan(recipe, args.start, args.stop))
        return EXIT_OK
    if args.vis and not Path(args.vis).exists():
        raise BadInputError(f"--vis {args.vis}: no such file or directory")
    workdir = Path(args.workdir).resolve()
    if args.start > 1:
        ctx = rerun_context(workdir, args.start)
    else:
        ctx = new_context(workdir)
    set_parallel(ctx, args)
    run_recipe(recipe, ctx, vis=args.vis, start=args.start, stop=args.stop,
               progress=_progress)
    _progress(f"weblog: {workdir / 'weblog' / 'index.html'}")
    return EXIT_OK


def set_parallel(ctx, args: argparse.Namespace) -> None:
    """--parallel/--workers/--omp-threads into the context (kept for a resumed run)."""
    from .parallel import ParallelSettings

    given = {k: v for k, v in (("backend", args.parallel), ("workers", args.workers),
                                ("omp_threads", args.omp_threads)) if v is not None}
    if given:
        try:
            settings = ParallelSettings.from_dict({**ctx.parallel, **given})
        except ValueError as exc:
            raise BadInputError(f"solarpipe run: {exc}") from exc
        ctx.parallel = settings.to_dict()
        ctx.save()
    backend, n = ParallelSettings.from_dict(ctx.parallel).resolved()
    _progress(f"parallel: backend {backend}, {n} worker(s)")


def cmd_resume(args: argparse.Namespace) -> int:
    from .runner import resume

    resume(Path(args.workdir).resolve(), progress=_progress)
    _progress(f"weblog: {Path(args.workdir).resolve() / 'weblog' / 'index.html'}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """hsol_exportdata as the next stage of the run in --workdir (its context continues)."""
    from .context import Context
    from .runner import run_stage

    workdir = Path(args.workdir).resolve()
    ctx = Context.load(workdir)
    run_stage(ctx, "hsol_exportdata", {"outdir": args.outdir, "weblog": not args.no_weblog}, progress=_progress)
    _progress(f"delivery: {(workdir / args.outdir).resolve()} (manifest.json verified)")
    return EXIT_OK


def cmd_tasks(args: argparse.Namespace) -> int:
    import inspect

    from .runner import inputs_doc
    from .tasks.registry import get_task, task_names

    for name in task_names():
        cls = get_task(name)
        doc = (inspect.getdoc(inspect.getmodule(cls)) or "").splitlines()[0]
        print(f"{name}: {doc}")
        for pname, ptype, default in inputs_doc(cls):
            print(f"    {pname}: {ptype} = {default!r}")
    return EXIT_OK


def cmd_weblog(args: argparse.Namespace) -> int:
    """Print the weblog's index (or open it), or serve the weblog on loopback until Ctrl-C."""
    index = Path(args.workdir).resolve() / "weblog" / "index.html"
    if not index.exists():
        raise BadInputError(f"no weblog at {index}: run a recipe or a task first")
    server = None
    url = index.as_uri()
    if args.serve:
        from .weblog.serve import server_url, weblog_server

        try:
            server = weblog_server(index.parent, args.port)
        except OSError as exc:
            raise BadInputError(f"cannot serve the weblog on 127.0.0.1:{args.port} ({exc.strerror}); "
                                "give another --port (0: any free port)") from exc
        url = server_url(server)
        print(f"serving {index.parent} at {url} (loopback only; Ctrl-C stops)", flush=True)
    else:
        print(index)
    if args.open:
        import webbrowser

        webbrowser.open(url)
    if server is not None:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace, rest: list[str]) -> int:
    from .simulate.__main__ import main as simulate_main

    return simulate_main(rest)


def cmd_casa(rest: list[str]) -> int:
    """Start casashell with solarpipe's offline CASA configuration."""
    import os
    import subprocess

    from .casaenv import SITE_CONFIG

    env = dict(os.environ)
    env.setdefault("CASASITECONFIG", str(SITE_CONFIG))
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.call([sys.executable, "-m", "casashell", *rest], env=env)


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(Path(args.workdir).resolve(), size=args.size, progress=_progress)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="solarpipe", description="ALMA solar data pipeline")
    p.add_argument("--version", action="version", version=f"solarpipe {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log INFO messages")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run a recipe (YAML or ALMA-pipeline XML)")
    r.add_argument("recipe", help="recipe file, or the name of a packaged recipe (e.g. hsol_import)")
    r.add_argument("--vis", help="raw MS or ASDM (fills hsol_importdata's vis)")
    r.add_argument("--workdir", default=".", help="working directory (default: current)")
    r.add_argument("--start", type=int, default=1, help="first stage to run (re-runs from the snapshot before it)")
    r.add_argument("--stop", type=int, default=None, help="last stage to run")
    r.add_argument("--dry-run", action="store_true", help="print the plan and run nothing")
    r.add_argument("--parallel", choices=["auto", "serial", "process", "mpi", "dask"], default=None,
                   help="how heavy jobs run (default auto: MPI under 'mpirun ... -m mpi4py.futures', "
                        "else a process pool on a multi-core machine)")
    r.add_argument("--workers", type=int, default=None,
                   help="parallel workers (default: usable cores, or the MPI worker ranks)")
    r.add_argument("--omp-threads", type=int, default=None,
                   help="OpenMP threads per worker (default 1: faster on small machines)")
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("resume", help="continue a run after its last completed stage")
    s.add_argument("--workdir", default=".", help="working directory of the run")
    s.set_defaults(func=cmd_resume)

    e = sub.add_parser("export", help="write the delivery of a run: caltables, applycal instructions, "
                       "scriptForCalibration.py / scriptForImaging.py, FITS, weblog, QA2 report, manifest")
    e.add_argument("--workdir", default=".", help="working directory of the run")
    e.add_argument("--outdir", default="delivery", help="delivery directory, relative to the working "
                   "directory (default: delivery)")
    e.add_argument("--no-weblog", action="store_true", help="leave the weblog out of the delivery")
    e.set_defaults(func=cmd_export)

    t = sub.add_parser("tasks", help="list tasks and their parameters")
    t.set_defaults(func=cmd_tasks)

    w = sub.add_parser("weblog", help="print (or open, or serve) the weblog index")
    w.add_argument("--workdir", default=".")
    w.add_argument("--open", action="store_true", help="open it in a browser")
    w.add_argument("--serve", action="store_true",
                   help="serve it over HTTP on 127.0.0.1 until Ctrl-C (prints the URL)")
    w.add_argument("--port", type=int, default=0, help="port for --serve (default 0: any free port)")
    w.set_defaults(func=cmd_weblog)

    sim = sub.add_parser("simulate", help="write a simulated solar EB with its truth "
                         "(options: see 'solarpipe simulate --help')", add_help=False)
    sim.set_defaults(func=None, simulate=True)

    c = sub.add_parser("casa", help="start a CASA shell (casashell) configured for offline "
                       "use; arguments go to casashell, e.g. --nologger --nogui -c script.py",
                       add_help=False)
    c.set_defaults(func=None)

    d = sub.add_parser("demo", help="simulate an EB and run the full recipe on it")
    d.add_argument("--workdir", default="solarpipe_demo", help="where to write (default ./solarpipe_demo)")
    d.add_argument("--size", default="tiny", choices=["tiny", "small"], help="simulated EB size")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] == "casa":
        return cmd_casa(argv[1:])
    if argv and argv[0] == "simulate":
        return _guard(lambda: cmd_simulate(argparse.Namespace(), argv[1:]))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return _guard(lambda: args.func(args))


def _guard(fn) -> int:
    try:
        return int(fn() or 0)
    except BadInputError as exc:
        print(f"solarpipe: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SolarpipeError as exc:
        print(f"solarpipe: {exc}", file=sys.stderr)
        return EXIT_STAGE_FAILED
    except KeyboardInterrupt:
        print("solarpipe: interrupted; 'solarpipe resume' continues after the last completed stage",
              file=sys.stderr)
        return EXIT_STAGE_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
