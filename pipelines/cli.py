"""`tfrelay pipeline run|compile|submit|schedule` and `tfrelay retrain`: the commands data scientists and
CI jobs type. Settings are PipelineConfig fields; common ones have flags, any other can be set
with `--set field=value`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence

from tfrelay.pipelines import progress

DEFAULT_WORKDIR = "tfrelay-work"
DEFAULT_IMAGE = "tfrelay/pipeline:0.1.0"


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workdir",
        default=DEFAULT_WORKDIR,
        help=f"local workspace: data/, pipeline/, bucket/, servers/ go under it (default: {DEFAULT_WORKDIR})",
    )
    parser.add_argument(
        "--data-root", help="directory of CSV files to train on (default: WORKDIR/data)"
    )
    parser.add_argument("--pipeline-root", help="TFX artifact root (default: WORKDIR/pipeline)")
    parser.add_argument(
        "--base-path",
        help="where versions are pushed and served from: a directory, s3://bucket/path or gs://... "
        "(default: WORKDIR/bucket/MODEL)",
    )
    parser.add_argument(
        "--dataset",
        choices=["penguins", "digits"],
        default="penguins",
        help="the sample dataset and its model settings (digits: scikit-learn's 8x8 digits with a CNN)",
    )
    parser.add_argument(
        "--model-name", help="the name clients address (default: the dataset's name)"
    )
    parser.add_argument(
        "--endpoint", help="the model server's REST URL (default: http://127.0.0.1:8501 locally)"
    )
    parser.add_argument(
        "--target", choices=["local", "kubernetes"], default="local", help="where the server runs"
    )
    parser.add_argument("--epochs", type=int, help="training epochs")
    parser.add_argument(
        "--beam-arg",
        action="append",
        default=None,
        metavar="ARG",
        help="a Beam pipeline option, repeatable (default: DirectRunner, multi-processing, 2 workers)",
    )
    parser.add_argument("--no-deploy", action="store_true", help="stop after the push")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="any PipelineConfig field (VALUE is JSON, or a plain string), e.g. --set lower_bound=0.9",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show TFX, TensorFlow and Beam logs too"
    )


def config_from_args(args: argparse.Namespace):
    """The PipelineConfig the flags describe.

    Raises:
      SystemExit: an unknown --set field, with the known ones listed.
    """
    from tfrelay.pipelines.pipeline import PipelineConfig

    workdir = os.path.abspath(args.workdir)
    model_name = args.model_name or args.dataset
    values: dict = {
        "model_name": model_name,
        "pipeline_name": model_name,
        "data_root": args.data_root or os.path.join(workdir, "data"),
        "pipeline_root": args.pipeline_root or os.path.join(workdir, "pipeline"),
        "base_path": args.base_path or os.path.join(workdir, "bucket", model_name),
        "target": args.target,
        "endpoint": args.endpoint or "",
        "server_state_dir": os.path.join(workdir, "servers"),
        "deploy": not args.no_deploy,
    }
    if args.dataset == "digits":
        from tfrelay.pipelines.datasets import digits

        values.update(
            label_key=digits.LABEL_KEY,
            feature_keys=list(digits.FEATURE_KEYS),
            core_model_fn=digits.CORE_MODEL_FN,
            epochs=12,
            learning_rate=0.001,
        )
    if args.epochs:
        values["epochs"] = args.epochs
    if args.beam_arg:
        values["beam_pipeline_args"] = args.beam_arg
    fields = {f.name for f in dataclasses.fields(PipelineConfig)}
    for item in args.set:
        name, _, raw = item.partition("=")
        if name not in fields:
            raise SystemExit(
                f"--set {name}: not a pipeline setting; known: {', '.join(sorted(fields))}"
            )
        try:
            values[name] = json.loads(raw)
        except json.JSONDecodeError:
            values[name] = raw
    return PipelineConfig(**values)


def _print_summary(summary, config) -> None:
    print()
    if summary.blessed:
        shown = ", ".join(
            f"{k}={v:.3f}" for k, v in sorted(summary.metrics.items()) if not k.endswith("_diff")
        )
        print(f"  blessed      {shown}")
    else:
        print("  NOT blessed:")
        for check in summary.failed_checks:
            print(f"    - {check}")
    print(f"  push         {summary.push_reason}")
    if config.deploy:
        print(
            f"  serving      {config.model_name} version {summary.serving_version} at {summary.endpoint}"
        )
    print(f"  took         {summary.seconds:.0f}s")


def _run(config, verbose: bool) -> int:
    from tfrelay.pipelines.datasets import penguins
    from tfrelay.pipelines.runners.local import run_local

    if not os.path.isdir(config.data_root) or not os.listdir(config.data_root):
        if config.label_key != penguins.LABEL_KEY:
            raise SystemExit(
                f"No data in {config.data_root}: put CSV files there, or pass --data-root"
            )
        path = penguins.write_initial_data(config.data_root)
        print(f"No data in {config.data_root} yet: wrote the penguin sample data to {path}")
    print(f"Running pipeline {config.pipeline_name}: {config.data_root} -> {config.base_path}")
    summary = run_local(config)
    _print_summary(summary, config)
    return 0


def _retrain(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    os.makedirs(config.data_root, exist_ok=True)
    for source in args.data:
        if not os.path.isfile(source):
            raise SystemExit(f"--data {source}: no such file")
        target = os.path.join(
            config.data_root, f"{time.strftime('%Y%m%d-%H%M%S')}-{os.path.basename(source)}"
        )
        shutil.copyfile(source, target)
        print(f"Added {source} to the training data as {target}")
    return _run(config, args.verbose)


def _compile(args: argparse.Namespace) -> int:
    from tfrelay.pipelines.runners.kubeflow import compile_pipeline

    config = config_from_args(args)
    path = compile_pipeline(config, args.output, args.image)
    print(
        f"Wrote {path} (KFP PipelineSpec 2.1.0, image {args.image}). Upload it in the KFP UI or run:"
    )
    print(
        f"  tfrelay pipeline submit --host http://KFP_HOST --package {path} --pipeline-root {config.pipeline_root}"
    )
    return 0


def _submit(args: argparse.Namespace) -> int:
    from tfrelay.pipelines.runners.kubeflow import submit

    config = config_from_args(args)
    try:
        run_id = submit(
            config,
            host=args.host,
            image=args.image,
            package_path=args.package,
            experiment=args.experiment,
            run_name=args.run_name,
            namespace=args.namespace,
        )
    except ValueError as err:
        raise SystemExit(f"tfrelay pipeline submit: {err}") from err
    print(f"Submitted run {run_id} to {args.host} (experiment {args.experiment})")
    return 0


def _schedule(args: argparse.Namespace) -> int:
    from tfrelay.pipelines.runners.kubeflow import schedule

    config = config_from_args(args)
    try:
        recurring_run_id = schedule(
            config,
            host=args.host,
            image=args.image,
            cron=args.cron,
            interval_seconds=args.interval_seconds,
            package_path=args.package,
            experiment=args.experiment,
            name=args.name,
            description=args.description,
            max_concurrency=args.max_concurrency,
            catchup=args.catchup,
            start_time=args.start_time,
            end_time=args.end_time,
            enabled=not args.paused,
            namespace=args.namespace,
            service_account=args.service_account,
        )
    except ValueError as err:
        raise SystemExit(f"tfrelay pipeline schedule: {err}") from err
    when = f"cron {args.cron!r}" if args.cron else f"every {args.interval_seconds}s"
    print(
        f"Created recurring run {recurring_run_id} on {args.host} (experiment {args.experiment}, "
        f"{when}, at most {args.max_concurrency} at a time)"
    )
    return 0


def _add_kfp_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", required=True, help="the KFP API endpoint")
    parser.add_argument(
        "--package", help="an already compiled pipeline.yaml (else it is compiled now)"
    )
    parser.add_argument("--image", default=DEFAULT_IMAGE, help="the pipeline image, when compiling")
    parser.add_argument(
        "--experiment", default="tfrelay", help="the KFP experiment (default: tfrelay)"
    )
    parser.add_argument("--namespace", help="the KFP namespace (multi-user installs)")


def build_parser(prog: str = "tfrelay") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Run the tfrelay pipeline.")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    run = sub.add_parser(
        "run", help="run the pipeline here (TFX LocalDagRunner, Beam DirectRunner)"
    )
    _add_config_flags(run)
    compile_ = sub.add_parser(
        "compile", help="compile for Kubeflow Pipelines 2.x (PipelineSpec 2.1 YAML)"
    )
    _add_config_flags(compile_)
    compile_.add_argument(
        "--output", default="pipeline.yaml", help="the .yaml to write (default: pipeline.yaml)"
    )
    compile_.add_argument(
        "--image",
        default=DEFAULT_IMAGE,
        help=f"the image every step runs (default: {DEFAULT_IMAGE})",
    )
    submit_ = sub.add_parser("submit", help="submit a run to a Kubeflow Pipelines host")
    _add_config_flags(submit_)
    _add_kfp_flags(submit_)
    submit_.add_argument("--run-name", help="the run's name")
    schedule_ = sub.add_parser(
        "schedule",
        help="create a KFP recurring run: retrain on a cron schedule or every N seconds",
    )
    _add_config_flags(schedule_)
    _add_kfp_flags(schedule_)
    when = schedule_.add_mutually_exclusive_group(required=True)
    when.add_argument(
        "--cron",
        help="when to run: KFP's six-field cron (second first, e.g. '0 0 3 * * *') or a "
        "five-field crontab line ('0 3 * * *')",
    )
    when.add_argument(
        "--interval-seconds", type=int, metavar="N", help="run every N seconds instead"
    )
    schedule_.add_argument(
        "--name", help="the recurring run's name (default: '<pipeline name> retrain')"
    )
    schedule_.add_argument("--description", help="the recurring run's description")
    schedule_.add_argument(
        "--max-concurrency",
        type=int,
        default=1,
        help="how many of its runs may run at once (default: 1, never overlapping)",
    )
    schedule_.add_argument(
        "--catchup",
        action="store_true",
        help="after a pause, run every missed interval (default: only the latest)",
    )
    schedule_.add_argument("--start-time", help="RFC 3339 time before which it does not run")
    schedule_.add_argument("--end-time", help="RFC 3339 time after which it stops")
    schedule_.add_argument("--paused", action="store_true", help="create it disabled")
    schedule_.add_argument("--service-account", help="the Kubernetes service account its runs use")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`tfrelay pipeline ACTION ...`."""
    args = build_parser("tfrelay pipeline").parse_args(sys.argv[1:] if argv is None else argv)
    progress.configure(args.verbose)  # before anything imports TensorFlow
    if args.action == "run":
        return _run(config_from_args(args), args.verbose)
    if args.action == "compile":
        return _compile(args)
    if args.action == "schedule":
        return _schedule(args)
    return _submit(args)


def retrain_main(argv: Sequence[str] | None = None) -> int:
    """`tfrelay retrain --data new.csv`: add data, then run the pipeline."""
    parser = argparse.ArgumentParser(
        prog="tfrelay retrain",
        description="Add new CSV data to the training data and run the pipeline: the new model is "
        "validated against the version serving now, pushed if it is at least as good, and served "
        "by the running server without a restart.",
    )
    parser.add_argument(
        "--data",
        action="append",
        required=True,
        metavar="CSV",
        help="a CSV file of new examples (repeatable)",
    )
    _add_config_flags(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    progress.configure(args.verbose)  # before anything imports TensorFlow
    return _retrain(args)
