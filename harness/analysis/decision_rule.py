"""The decision rule in words, where a command's help or a report states it. A module of its own without imports, so
that `harness --help` stays quick."""

DECISION_RULE = (
    "The decision rule (README, Metrics): on the study's objective metric, paired on the same test examples. For 0/1 "
    "scores, McNemar's exact test with a 95% interval built from the same test (Clopper-Pearson intervals of the "
    "winning share of disagreeing pairs and of their share of all pairs, combined: conservative, wider than the usual "
    "paired interval), so the interval excludes 0 exactly when p < 0.05; for other scores, a paired percentile "
    "bootstrap, expanded for small samples, whose p comes from the same draws. Better when the interval lies wholly on"
    " the good side of 0; not worse when its bad end stays within the margin; worse when wholly on the bad side; "
    "otherwise not shown. Secondary scores are read at Holm-adjusted p.")

VERDICT_RULE = (
    "The best fine-tuned trial on dev is weighed against the real opponent, the best prompting arm on dev (hosted or "
    "local), on the same test examples. YES: the fine-tuned trial is better beyond noise and meets every dev "
    "constraint. NOT READY: it is better but breaks a dev constraint. NO: the opponent is better beyond noise. NOT "
    "SHOWN: the interval of the difference includes 0, or, on task accuracy of a label suite, the fine-tuned trial "
    "is not better beyond noise than always answering the commonest test label. No verdict: a side is missing, or "
    "they share no scored test example. A trial whose time cap stopped its training before its step budget never "
    "stands for fine-tuning. Every trial is chosen on dev; test is reported, never used to choose.")
