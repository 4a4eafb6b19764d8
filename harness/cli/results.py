"""`harness trials`, `show`, `compare`, `payback`, `report` and `dashboard`: what a study found, read from the
results database."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from rich.console import Console

from harness.analysis.decision_rule import DECISION_RULE
from harness.analysis.formatting import flag_value
from harness.cli.console import print_flagged, warn_broken_seals
from harness.cli.options import (
    count,
    database_path,
    db_option,
    finite,
    given_db_exists,
    margin,
    named,
    open_store,
    positive,
    throughput,
    volume,
)
from harness.cli.parsing import Help, examples_block, login_name, teach
from harness.core.errors import HarnessError


def add_commands(sub) -> None:
    trials = sub.add_parser("trials", help="list trials with their metrics")
    trials.add_argument("--study", type=named, help="only this study")
    trials.add_argument("--format", choices=("table", "json", "csv"), default="table",
                        help="table (default): ranked on dev, with test scores; json: every metric as {value, low, "
                             "high, n}; csv: one row per trial, for a spreadsheet")
    teach(trials, ("harness trials", "every trial in results/harness.duckdb"),
          ("harness trials --study demo --format json", "one study, as JSON"),
          ("harness trials --format csv > trials.csv", ""),
          ("harness trials --db /data/results", "another results folder"),
          description="Every trial in the results database (or in --study), ranked on dev, feasible first: method, "
                      "parameters, dev and test accuracy, format compliance, hallucination and forgetting, each with "
                      "its 95% interval and n. Test is reported, never used to choose. It can run while a sweep "
                      "writes.")
    db_option(trials)
    trials.set_defaults(run=_trials)

    show = sub.add_parser("show", help="one trial in full")
    show.add_argument("trial", help="trial id STUDY/NUMBER (or NUMBER when the database holds one study)")
    show.add_argument("--examples", type=count, default=5, help="how many failed examples to show (default 5)")
    show.add_argument("--format", choices=("table", "json"), default="table",
                      help="table (default) for a reader; json for a pipeline: every field the trial recorded, each "
                           "metric as {value, low, high, n}, and its first --examples wrong test answers")
    db_option(show)
    teach(show, ("harness show demo/1", "the demo's LoRA trial"),
          ("harness show demo/1 --examples 20", "and 20 of its wrong test answers"),
          ("harness show demo/1 --format json > demo-1.json", "every field it recorded, for a pipeline"),
          description="One trial in full: parameters, where its time went, training steps and loss, every metric on "
                      "dev and test with its 95% interval and n, the forgetting check, per-label F1 and the "
                      "commonest confusions, and its wrong test answers.")
    show.set_defaults(run=_show)

    compare = sub.add_parser("compare", help="is trial A really better than B? paired tests on the same examples",
                             description="Compare two trials on the same examples, every score with its 95% "
                                         "interval and p-value, and list the examples where they disagree. A "
                                         "compare on test is recorded as a look at test. " + DECISION_RULE)
    compare.add_argument("a", help="trial id STUDY/NUMBER")
    compare.add_argument("b", nargs="?", help="trial id STUDY/NUMBER (default: the production adapter of A's suite)")
    compare.add_argument("--split", default="test", choices=("dev", "test"), help="examples to compare (test)")
    compare.add_argument("--examples", type=count, default=10, help="disagreements to list (default 10)")
    compare.add_argument("--format", choices=("table", "json"), default="table",
                         help="table (default) for a reader, json for a pipeline")
    compare.add_argument("--margin", type=margin, default=0.0,
                         help="non-inferiority margin on the objective, as a fraction (0.02 = 2 points; default 0: "
                              "is A better than B; payback and report judge 'not worse' with 0.02 unless given)")
    compare.add_argument("--actor", default=login_name(), help="who looks (recorded with a compare on test; default: "
                                                           "your login name)")
    db_option(compare)
    compare.epilog = examples_block(
        ("harness compare demo/1 demo/0", "the demo's LoRA against its prompting arm, on test"),
        ("harness compare demo/1", "against the production adapter of its suite"),
        ("harness compare demo/1 demo/0 --split dev", "on dev (not recorded as a look at test)"),
        ("harness compare demo/1 demo/0 --margin 0.02", "is A not worse by more than 2 points?"),
        ("harness compare demo/1 demo/0 --format json", ""))
    compare.formatter_class = Help
    compare.set_defaults(run=_compare)

    payback = sub.add_parser(
        "payback", help="months until fine-tuning pays for itself against a baseline, with every assumption",
        description="Price the candidate's serving (measured throughput x device price) against a baseline "
                    "(another trial, or a hosted API priced per token), add the sweep's compute and your one-time "
                    "costs, and report months to payback, the break-even volume and the sensitivity. A candidate "
                    "not shown to be as good as the baseline (within --margin) gets no payback figure, and the output "
                    "says why. A payback beyond the 12-month horizon reads DOES NOT PAY BACK, with the months it "
                    "would take. Both sides are models: the fine-tuned one against prompting. What automating the "
                    "task saves against people doing it by hand is outside this figure. " + DECISION_RULE)
    payback.add_argument("trial", help="the fine-tuned candidate, STUDY/NUMBER")
    payback.add_argument("--baseline", help="a trial STUDY/NUMBER, or api:NAME from the price table (default: the "
                                            "study's best hosted arm, else its best local prompting arm)")
    payback.add_argument("--volume", type=volume, required=True,
                         help="queries per month, above 0 and at most a trillion (an average, so a fraction is kept "
                              "as given)")
    payback_options(payback)
    payback.add_argument("--format", choices=("text", "table", "json"), default="text",
                         help="text (default; `table`, as trials and compare name it, is the same): the answer, then "
                              "every assumption with its unit and source; json: all of it, for a spreadsheet or a "
                              "report")
    db_option(payback)
    payback.epilog = examples_block(
        ("harness payback demo/1 --volume 100000", "against the study's best hosted arm, else its best prompting arm"),
        ("harness payback demo/1 --baseline demo/0 --volume 100000 --eng-hours 40 --eng-rate 120", ""),
        ("harness payback demo/1 --baseline api:gpt-4o-mini --prompt-trial demo/0 --baseline-accuracy 0.85 "
         "--volume 100000", ""),
        ("harness payback demo/1 --volume 100000 --serving-throughput 15.0 --format json", ""))
    payback.formatter_class = Help
    payback.set_defaults(run=_payback)

    report = sub.add_parser(
        "report", help="the study's answer as one document (Markdown, HTML, PDF or JSON): verdict and rule, "
                       "evidence, cautions, payback",
        description="Write the study's answer as one document (Markdown, HTML or PDF, by --out or --format) a lead or "
                    "finance can read without the tool: "
                    "the verdict and the one rule that gave it; the fine-tuned trial and its real opponent side by "
                    "side, every score with its 95% interval and n, and their paired difference; every trial; the "
                    "cautions (failed, cut-short and infeasible trials); with --volume, the payback against the "
                    "verdict's opponent with every assumption and its source; the machines and library versions; "
                    "and the commands that re-derive each figure. It reads the results database and decides nothing "
                    "the sweep did not. " + DECISION_RULE)
    report.add_argument("--study", type=named, help="the study to report (default: the database's only sweep study)")
    report.add_argument("--out", metavar="FILE_OR_FOLDER",
                        help="the file to write: a self-contained HTML page (no scripts, prints as it shows) when "
                             "it ends in .html, a PDF (landscape A4, fonts embedded) when it ends in .pdf, Markdown "
                             "when it ends in .md, JSON when it ends in .json (another suffix is refused), else as "
                             "--format says; a folder (one that exists, or a path ending in /) gets report-STUDY.md "
                             "inside it, or .html, .pdf or .json by --format (default: report-STUDY.md beside the "
                             "results database); written whole or not "
                             "at all, and replaced when it exists. `--out -` prints it (md, html or json) to standard "
                             "output, for a pipe: `harness report --format json --out - | jq .verdict.ready`")
    report.add_argument("--format", choices=("md", "html", "pdf", "json"),
                        help="md (Markdown), html, pdf, or json (for a pipeline: the verdict's head, whether it is "
                             "ready, its decision with interval and n, the rule, the cautions and the payback; schema "
                             "in README, The decision report), for a folder or no --out (default md); a file's own "
                             "suffix must agree with it")
    report.add_argument("--volume", type=volume,
                        help="queries per month, above 0: adds the payback (without it the report has none)")
    report.add_argument("--baseline", help="price against this trial STUDY/NUMBER, or api:NAME from the price table, "
                                           "instead of the verdict's opponent")
    payback_options(report)
    db_option(report)
    report.epilog = examples_block(
        ("harness report", "results/report-demo.md: the demo's answer and its evidence"),
        ("harness report --volume 100000 --eng-hours 40 --eng-rate 120", "with the payback at 100,000 queries a month"),
        ("harness report --study demo --out decision.html --db /data/results", "as an HTML page, from another folder"),
        ("harness report --volume 100000 --out decision.pdf", "as a PDF for finance, with the payback"),
        ("harness report --out reports/ --format html", "reports/report-demo.html"),
        ("harness report --out verdict.json && jq -e '.verdict.ready' verdict.json",
         "a CI step that fails unless the answer is YES"),
        ("harness report --volume 100000 --baseline api:gpt-4o-mini --baseline-accuracy 0.85",
         "priced against a hosted API"))
    report.formatter_class = Help
    report.set_defaults(run=_report)

    dashboard = sub.add_parser("dashboard", help="the Streamlit dashboard on 127.0.0.1: leaderboard, trials, "
                                                 "compare, cost and payback",
                               description="Serve the dashboard on 127.0.0.1 (no usage statistics). It reads the "
                                           "results and never changes them, so it can run while a sweep writes (a "
                                           "Compare on test is recorded as a look at test, as harness compare "
                                           "does). With HARNESS_DASHBOARD_PASSWORD set in the environment, every "
                                           "page asks for that password.")
    dashboard.add_argument("--port", type=int, default=8501, help="the port to listen on (default 8501)")
    dashboard.add_argument("--address", default="127.0.0.1",
                           help="the address to listen on (default 127.0.0.1: this machine only). Any other, e.g. "
                                "0.0.0.0, needs HARNESS_DASHBOARD_PASSWORD set, or --behind-proxy")
    dashboard.add_argument("--behind-proxy", action="store_true",
                           help="serve a non-loopback --address without a password because a reverse proxy in front "
                                "authenticates every request")
    db_option(dashboard)
    dashboard.set_defaults(run=_dashboard)
    dashboard.epilog = examples_block(
        ("harness dashboard", "results/harness.duckdb, on http://127.0.0.1:8501"),
        ("harness dashboard --db /data/results --port 8502", "another results folder, another port"),
        ("read -rs HARNESS_DASHBOARD_PASSWORD && export HARNESS_DASHBOARD_PASSWORD", ""),
        ("harness dashboard --address 0.0.0.0", "reachable from other machines, behind that password"))
    dashboard.formatter_class = Help


def payback_options(parser: argparse.ArgumentParser) -> None:
    """What prices a candidate against its baseline: the same for `payback` and `report`."""
    parser.add_argument("--prompt-trial", help="for api:NAME: the local prompting trial (not a fine-tuned one) whose "
                        "tokens per query are priced (default: the study's best on dev)")
    parser.add_argument("--baseline-accuracy", type=finite,
                        help="for api:NAME: its test accuracy (0..1), which the quality bar needs since a hosted "
                        "model's accuracy cannot be measured offline; marked 'assumed, not measured'")
    parser.add_argument("--token-ratio", type=positive,
                        help="hosted-model tokens per local token, above 0 (default: the price table's)")
    parser.add_argument("--data-prep-hours", type=finite,
                        help="hours spent preparing the training data, a one-time cost (default 0)")
    parser.add_argument("--data-prep-rate", type=finite,
                        help="USD per data-preparation hour")
    parser.add_argument("--eng-hours", type=finite,
                        help="engineering hours to build and ship the fine-tuned model, a one-time cost (default 0)")
    parser.add_argument("--eng-rate", type=finite,
                        help="USD per engineering hour")
    parser.add_argument("--hosting", type=finite,
                        help="fixed monthly hosting of the candidate, USD")
    parser.add_argument("--serving-throughput", type=throughput, metavar="TOKENS_PER_S",
                        help="the candidate's completion tokens per second as measured on your serving stack (marked "
                             "user input); default: its vLLM load test (generation.engine: vllm), else the labelled "
                             "fallback, the harness's own generate at the sweep's batch size")
    parser.add_argument("--serving-usd-per-hour", type=positive, metavar="USD",
                        help="what an hour of the machine --serving-throughput was measured on costs (marked user "
                             "input); default: the trial's own device at the price table's rate")
    parser.add_argument("--baseline-serving-throughput", type=throughput, metavar="TOKENS_PER_S",
                        help="the same for a local baseline trial, so that both are priced on the same serving "
                             "stack; payback cautions when the two are priced on different engines")
    parser.add_argument("--baseline-serving-usd-per-hour", type=positive, metavar="USD",
                        help="what an hour of the machine --baseline-serving-throughput was measured on costs")
    parser.add_argument("--utilisation", type=finite,
                        help="share of paid device time spent answering, in (0, 1]; 1 (default) is full batches "
                             "all the time; lower it for a dedicated machine that idles part of the day")
    parser.add_argument("--horizon", type=positive, metavar="MONTHS",
                        help="months within which it must pay back to read PAYS BACK, and over which the break-even "
                             "volume is computed (default 12, as the dashboard's Cost page starts)")
    parser.add_argument("--margin", type=margin, default=PAYBACK_DEFAULTS["--margin"],
                        help="quality bar, as a fraction: the candidate must not be worse than the baseline on the "
                             "objective metric by more than this, by the paired 95%% interval on the same test "
                             "examples (default 0.02, 2 points; the decision rule of README's Metrics section)")
    parser.add_argument("--hosted-price", metavar="NAME",
                        help="price hosted arms that ran without a `price` (a server of your own) at this `apis:` "
                             "entry of the price table (or of --prices), after the fact; marked user input")
    parser.add_argument("--prices", type=Path,
                        help="a price table in the layout of the bundled harness/analysis/prices.yaml")


PAYBACK_DEFAULTS = {"--margin": 0.02}
"""`payback_options`' defaults; every other payback flag defaults to None, not given (`payback` counts it as 0, or
a utilisation of 1, and says it was not given)."""


def _trials(args, console: Console) -> int:
    from harness.analysis import report

    store = open_store(args.db)
    given_db_exists(args.db, store)
    if not store.path.exists() and args.format != "table":  # a script in the wrong folder would read [] as "none"
        raise HarnessError(f"no results database at {store.path}: run this in the folder that holds results/, or "
                           "give --db the harness.duckdb a sweep wrote (or the results folder that holds it).")
    trials = store.trials(args.study)
    studies = {study.name: study for study in store.studies()}
    objectives = {name: study.objective_metric for name, study in studies.items()}
    if not trials and args.study:
        known = sorted({t.study for t in store.trials()} | set(objectives))
        if known and args.study not in known:  # a study name given wrong reads as "no trials yet" otherwise
            raise HarnessError(f"no study {args.study!r} in {store.path}; its studies: {', '.join(known)}. Pass one "
                               "of them to --study, or leave --study out for every trial.")
    if not trials and args.format == "table":  # an empty table with no word reads as a broken command
        where = (f"there is no results database at {store.path} yet" if not store.path.exists()
                 else f"study {args.study} has none in {store.path} yet" if args.study
                 else f"{store.path} holds none yet")
        console.print(f"no trials: {where}. Run a sweep (`harness sweep EXPERIMENT`) in this folder, or point --db "
                      "at the harness.duckdb of a results folder.", highlight=False)
        return 0
    seals = store.seals([t.id for t in trials])
    warn_broken_seals(console, seals)  # on standard error: JSON and CSV carry `seal_intact` for scripts
    if any(t.status == "running" for t in trials):
        from harness.sweep.resume import ended_runs_note

        if (note := ended_runs_note(trials, store.runs(t.run_id for t in trials if t.run_id))) is not None:
            print_flagged(console, "note", note)
    intact = {check.trial_id: check.intact for check in seals}
    if args.format == "json":
        sys.stdout.write(report.trials_json(trials, objectives, intact) + "\n")
    elif args.format == "csv":
        sys.stdout.write(report.trials_csv(trials, objectives, intact))
    else:  # each study ranked on its own dev set: dev scores of two suites, or two subsets, do not rank together
        by_study: dict[str, list] = {}
        for t in trials:
            by_study.setdefault(t.study, []).append(t)
        for name, own in by_study.items():
            if len(by_study) > 1:
                study = studies.get(name)
                suite = f", suite {study.suite} {study.suite_version}" if study is not None else ""
                console.print(f"study {name}{suite}:", highlight=False)
            console.print(report.ranking_table(own, objectives))
    return 0


def _show(args, console: Console) -> int:
    from harness.analysis import report

    store = open_store(args.db)
    trial = store.require_trial(args.trial)
    warn_broken_seals(console, store.seals([trial.id]))
    if args.format == "json":
        sys.stdout.write(report.trial_json(trial, store.examples(trial.id), failures=args.examples) + "\n")
        return 0
    console.print(report.trial_detail(trial, store.examples(trial.id), failures=args.examples,
                                      contract=report.suite_contract(store, trial)), highlight=False)
    return 0


def _compare(args, console: Console) -> int:
    from harness.analysis import compare
    from harness.lifecycle.promote import production_for

    store = open_store(args.db)
    b = args.b or production_for(store, args.a)
    result = compare.compare_trials(store, args.a, b, split=args.split, max_disagreements=args.examples,
                                    margin=args.margin)
    if args.split == "test":
        store.record_look(compare.comparison_look(store, result, args.actor))
    if args.format == "json":
        sys.stdout.write(compare.comparison_json(result) + "\n")
        return 0
    console.print(compare.comparison_table(result))
    if result.disagreements:
        console.print(compare.disagreement_table(result))
    console.print(compare.comparison_text(result), highlight=False)
    return 0


def _payback(args, console: Console) -> int:
    from harness.analysis import report
    from harness.analysis.payback import payback_from_store

    store = open_store(args.db)
    candidate = store.require_trial(args.trial)
    study = store.study(candidate.study)
    result = payback_from_store(store, candidate.id, args.baseline, args.volume, **_payback_kwargs(args, study))
    # what it priced from: the candidate, and a trial baseline or prompt trial (an api:NAME baseline is no trial, and
    # the seals skip it)
    warn_broken_seals(console, store.seals([candidate.id, *(t for t in (result.baseline, args.prompt_trial) if t)]))
    if args.format == "json":
        sys.stdout.write(json.dumps(result.to_dict(), default=str, indent=2) + "\n")
    else:
        console.print(report.payback_text(result), highlight=False)
    return 0


def _payback_kwargs(args, study) -> dict:
    """`payback_options` as `payback_from_store` takes them; the price table with the experiment file's `prices:`."""
    from harness.analysis.cost import load_prices
    from harness.analysis.payback import FLAGS, QualityBar

    names = {flag: name for name, flag in FLAGS.items()}
    for hours, rate in (("--eng-hours", "--eng-rate"), ("--data-prep-hours", "--data-prep-rate")):
        given = {flag: getattr(args, flag[2:].replace("-", "_")) or 0.0 for flag in (hours, rate)}  # None: not given
        for flag, value in given.items():  # a negative figure is wrong as given, whatever its pair says
            if value < 0:
                raise HarnessError(f"payback: `{names[flag]}` ({flag}) must be >= 0, got {value!r}.")
        if (given[hours] > 0) != (given[rate] > 0):  # either alone prices the one-time cost at $0, unsaid
            missing, present = (rate, hours) if given[hours] > 0 else (hours, rate)
            raise HarnessError(f"{present} {given[present]:g} needs {missing} too, above 0: the one-time cost is "
                               f"hours x USD per hour, and without {missing} it would count as $0. Add {missing}, or "
                               f"drop {present}.")
    return dict(
        prices=load_prices(args.prices, study.price_overrides if study else None), prompt_trial_id=args.prompt_trial,
        baseline_accuracy=args.baseline_accuracy, token_ratio=args.token_ratio,
        serving_throughput=args.serving_throughput, baseline_serving_throughput=args.baseline_serving_throughput,
        serving_usd_per_hour=args.serving_usd_per_hour,
        baseline_serving_usd_per_hour=args.baseline_serving_usd_per_hour, hosted_price=args.hosted_price,
        data_prep_hours=args.data_prep_hours, data_prep_usd_per_hour=args.data_prep_rate,
        engineering_hours=args.eng_hours, engineering_usd_per_hour=args.eng_rate, fixed_monthly_usd=args.hosting,
        utilisation=args.utilisation, quality_bar=QualityBar(margin=args.margin), horizon_months=args.horizon,
    )


def _report(args, console: Console) -> int:
    from datetime import datetime, timezone

    from harness.analysis import decision_report
    from harness.analysis.payback import payback_from_store

    store = open_store(args.db)
    study = decision_report.pick_study(store, args.study)
    flags = _payback_flags_given(args)
    if args.volume is None and flags:  # a rate with no volume would silently price nothing
        raise HarnessError(f"{', '.join(flags)} {'prices' if len(flags) == 1 else 'price'} the payback, which needs "
                           "--volume QUERIES_PER_MONTH; add it, or drop the flag.")
    price = None
    if args.volume is not None:
        kwargs = _payback_kwargs(args, study)

        def price(tuned: str, opponent: str):  # against the verdict's opponent unless --baseline names another
            return payback_from_store(store, tuned, args.baseline or opponent, args.volume, **kwargs)
    given = "".join(f" {flag} {flag_value(value)}" if isinstance(value, float) else f" {flag} {shlex.quote(str(value))}"
                    for flag, value in flags.items() if flag != "--baseline")
    if args.out is not None and not args.out.strip():
        raise HarnessError("--out is empty: give a file (report.md, report.pdf), a folder, or - for standard output.")
    if args.out == "-":  # for a pipe: the document alone on standard output, everything else on standard error
        if args.format == "pdf":
            raise HarnessError("--out - prints the report to standard output as md, html or json: a PDF goes to a "
                               "file (--out report.pdf).")
        made = decision_report.build_report(store, study, price, datetime.now(timezone.utc), given)
        sys.stdout.write(decision_report.render(made, args.format or "md").rstrip("\n") + "\n")
        return 0
    out, fmt = decision_report.report_target(args.out, store.path.parent, study.name, args.format)
    made = decision_report.build_report(store, study, price, datetime.now(timezone.utc), given)
    folders = decision_report.write_report(decision_report.render(made, fmt), out)
    console.print(f"{made.verdict.head}: wrote {out}" + (f" (made the folder {folders[0]}, which did not exist)"
                                                         if folders else ""), highlight=False)
    gaps, backwards = decision_report.pdf_gaps(made) if fmt == "pdf" else ([], [])
    if gaps:
        console.print(f"note: the PDF's font (DejaVu Sans) has no glyph for {len(gaps)} character(s) of the report "
                      f"({' '.join(gaps[:10])}{' ...' if len(gaps) > 10 else ''}); they show blank there. "
                      f"`--out {out.with_suffix('.html').name}` shows them, and a browser prints it to PDF.",
                      highlight=False)
    if backwards:
        console.print(f"note: the report holds text written right to left ({', '.join(backwards[:5])}), which the PDF "
                      "draws left to right, its Arabic letters unjoined, so it reads reversed there. "
                      f"`--out {out.with_suffix('.html').name}` shows it as written, and a browser prints it to PDF.",
                      highlight=False)
    if made.payback is not None:
        console.print(f"payback: {made.payback.headline()}", highlight=False)
    return 0


def _payback_flags_given(args) -> dict[str, object]:
    """The payback flags a user set away from their defaults, with their values."""
    names = ("--baseline", "--prompt-trial", "--baseline-accuracy", "--token-ratio", "--serving-throughput",
             "--baseline-serving-throughput", "--serving-usd-per-hour", "--baseline-serving-usd-per-hour",
             "--hosted-price", "--prices", "--horizon", "--data-prep-hours", "--data-prep-rate", "--eng-hours",
             "--eng-rate", "--hosting", "--utilisation", *PAYBACK_DEFAULTS)
    values = {name: getattr(args, name[2:].replace("-", "_")) for name in names}
    return {name: value for name, value in values.items() if value is not None and value != PAYBACK_DEFAULTS.get(name)}


def _dashboard(args, console: Console) -> int:
    from harness.dashboard import launch

    path = database_path(args.db) if args.db else Path("results/harness.duckdb")
    if path.is_file():  # a file that is no results database is refused here, as `trials` refuses it, not on each page
        open_store(path).studies()
    return launch(path, args.port, args.address, args.behind_proxy)
