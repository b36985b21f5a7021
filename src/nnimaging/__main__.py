"""Command line: ``python -m nnimaging execute CHAPTER.ipynb [...]``, ``python -m nnimaging students``.

``execute`` re-executes chapters top to bottom and stores them with their outputs, which nbval then
checks. ``students [--out students/] [--check]`` writes the student notebooks of the chapters'
exercises (``nnimaging.students``), or checks that the committed ones are up to date.
(Training and evaluation have their own commands: ``python -m nnimaging.train``,
``python -m nnimaging.evaluate``.)
"""

import argparse
import os

from . import _checks
from .notebook import execute


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nnimaging", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("execute", help="run chapters and store their outputs")
    run.add_argument("notebooks", nargs="+", help="paths of .ipynb files")
    run.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell")
    stu = sub.add_parser("students", help="write the student notebooks of the chapters' exercises")
    stu.add_argument("--out", default="students", help="folder of the student notebooks")
    stu.add_argument("--check", action="store_true",
                     help="write nothing; fail if the notebooks in --out are not up to date")
    args = parser.parse_args(argv)
    if args.command == "students":
        from . import students

        students.main(["--out", args.out] + (["--check"] if args.check else []))
        return
    _checks.positive_int("--timeout", args.timeout)
    for notebook in args.notebooks:  # every path checked before the first chapter runs
        if not os.path.isfile(notebook) or not notebook.endswith(".ipynb"):
            raise _checks.UsageError(f"expected an existing .ipynb file, got {notebook!r}")
    for notebook in args.notebooks:
        print(f"executing {notebook}", flush=True)
        execute(notebook, timeout=args.timeout)


if __name__ == "__main__":
    _checks.run_cli(main, prog="python -m nnimaging")
