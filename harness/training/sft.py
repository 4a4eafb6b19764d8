"""Supervised fine-tuning through TRL's SFTTrainer, with loss on the answer only.

A thin wrapper: it builds the prompt/completion dataset and the SFTConfig, and adds callbacks for the time
budget, intermediate dev scoring (for pruning) and a progress bar. It never subclasses the Trainer.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from datasets import Dataset
from tqdm.auto import tqdm
from transformers import PrinterCallback, TrainerCallback
from trl import SFTConfig, SFTTrainer

from harness.core.config import BudgetConfig, TrainingConfig
from harness.core.errors import TrainingError
from harness.core.progress import bar_options
from harness.data.prompting import Prompter
from harness.data.suites import Example
from harness.models.device import free_memory, use_bf16
from harness.models.loading import library_bars_off
from harness.training.packing import keeps_examples_apart
from harness.training.train_report import DevProbe, TrainReport


def train(model, tokenizer, prompter: Prompter, examples: list[Example], learning_rate: float,
          budget: BudgetConfig, training: TrainingConfig, device: str, seed: int,
          dev_probe: DevProbe | None = None) -> TrainReport:
    """Train `model` in place on `examples` and report what happened."""
    dataset = Dataset.from_list(
        [{"prompt": prompter.prompt(ex), "completion": prompter.completion(ex)} for ex in examples]
    )
    report = TrainReport(train_examples=len(examples))
    padding_free = training.padding_free and _packing_is_exact(model, tokenizer, dataset)
    report.padding_free = padding_free
    with tempfile.TemporaryDirectory(prefix="harness-train-") as scratch:
        args = SFTConfig(
            output_dir=scratch,
            per_device_train_batch_size=training.batch_size,
            gradient_accumulation_steps=training.gradient_accumulation,
            learning_rate=learning_rate,
            num_train_epochs=budget.epochs,
            max_steps=budget.max_steps or -1,
            warmup_steps=training.warmup_steps,
            weight_decay=training.weight_decay,
            # TRL does not truncate padding-free rows: the sweep refuses or cuts over-long examples first (over_length).
            max_length=None if padding_free else training.max_length,
            padding_free=padding_free,
            completion_only_loss=True,
            bf16=use_bf16(training.precision, device),
            use_cpu=device == "cpu",
            **_checkpointing(training.gradient_checkpointing),
            logging_steps=5,
            logging_first_step=True,  # a run its time cap stops after a step or two still shows where its loss began
            logging_nan_inf_filter=False,  # the filter hides a diverged loss; the callback fails the trial on it
            save_strategy="no",
            report_to=[],
            disable_tqdm=True,
            seed=seed,
            data_seed=seed,
            dataloader_num_workers=0,
        )
        with library_bars_off(), lm_head_on_labels_only():  # TRL prepares the dataset in five passes, each a bar
            trainer = SFTTrainer(
                model=model,
                args=args,
                train_dataset=dataset,
                processing_class=tokenizer,
                callbacks=[_BudgetAndProbe(report, budget.trial_train_seconds, training.eval_every_steps, dev_probe)],
            )
        trainer.remove_callback(PrinterCallback)  # it prints every log dict; the progress bar shows the loss
        began = time.perf_counter()
        with lm_head_on_labels_only():
            trainer.train()
        report.seconds = time.perf_counter() - began
        # Mixed precision wraps the model's forward in autocast; take it off, so the trained model answers in the
        # dtype of its weights, exactly as it will when loaded from its artifact.
        trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
        if report.stopped_by == "epochs" and budget.max_steps and report.steps >= budget.max_steps:
            report.stopped_by = "max_steps"
    # The trainer (its optimizer state, its reference cycles) and the heap its steps freed go before the model is
    # scored: on a CPU, glibc would otherwise keep the training's 2 GB of freed heap resident through scoring and
    # the forgetting check, whose own memory came on top (the demo's peak; bench/RESULTS.md, 2026-12-06).
    del trainer
    free_memory(device)
    model.eval()
    return report


def _packing_is_exact(model, tokenizer, dataset: Dataset) -> bool:
    """Whether this model trains on joined rows exactly as on padded ones; says so when it does not."""
    if len(dataset) < 2:
        return True
    first, second = ([*tokenizer(row["prompt"] + row["completion"]).input_ids, tokenizer.eos_token_id]
                     for row in dataset.select(range(2)))
    if keeps_examples_apart(model, first, second):
        return True
    tqdm.write("training.padding_free: this model's attention does not keep the examples of a joined row apart "
               "(it ignores their position_ids), so it trains on padded batches: the same loss, more compute. "
               "Set `training.padding_free: false` to skip this check.")
    return False


@contextmanager
def lm_head_on_labels_only() -> Iterator[None]:
    """Project through the LM head only the positions the loss is on (the answer), on every device.

    TRL's fused LM head scores only the positions with a label on CUDA and XPU, and every position elsewhere, so
    that Neuron does not recompile for each new count; on a CPU that computes the vocabulary's logits for every
    prompt token and throws them away (a quarter of a LoRA step on ticket-triage, where the answer is a fifth of the
    row). The loss is the same either way (tests/test_packing.py checks it); eager CPU code compiles nothing. TRL
    decides with `trl.trainer.utils._use_triton`, which is therefore answered here for CPUs; a TRL without it is
    left as it is."""
    import trl.trainer.utils as trl_utils

    real = getattr(trl_utils, "_use_triton", None)
    if real is None:
        yield
        return
    trl_utils._use_triton = lambda device: device.type == "cpu" or real(device)
    try:
        yield
    finally:
        trl_utils._use_triton = real


@contextmanager
def scored_as_saved(model) -> Iterator[None]:
    """The dev probe scores the model as the trial's final scoring will, in the dtype of its weights. Mixed precision
    wraps the model's forward in autocast (accelerate keeps the plain one as `_original_forward`); generation encodes
    the prompts' shared prefix once through that forward, which cached bf16 values beside fp32 keys on a CPU, and
    scaled_dot_product_attention refused the mix: every bf16 trial failed at its first probe."""
    wrapped = model.__dict__.get("forward")
    plain = getattr(model, "_original_forward", None)
    if wrapped is None or plain is None:
        yield
        return
    model.forward = plain
    try:
        yield
    finally:
        model.forward = wrapped


def _checkpointing(enabled: bool) -> dict:
    """Activation checkpointing under the name this transformers knows: `activation_checkpointing` from 5.2x (where
    `gradient_checkpointing`, which TRL sets to True by default, warns that it goes in v6), the old name before."""
    names = {f.name for f in dataclasses.fields(SFTConfig)}
    flag = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    # non-reentrant: needs no gradient on the inputs, so frozen embeddings (LoRA) work as they are
    return {flag: enabled, f"{flag}_kwargs": {"use_reentrant": False} if enabled else None}


class _BudgetAndProbe(TrainerCallback):
    """Stops on the time budget or when the dev probe says prune; records the loss; draws a progress bar."""

    def __init__(self, report: TrainReport, seconds: float | None, every: int, probe: DevProbe | None):
        self.report, self.seconds, self.every, self.probe = report, seconds, every, probe
        self.bar: tqdm | None = None
        self.began = self.step_began = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self.step_began = time.perf_counter()

    def on_train_begin(self, args, state, control, **kwargs):
        self.began = time.perf_counter()
        self.report.planned_steps = state.max_steps
        self.bar = tqdm(total=state.max_steps, desc="train", unit="step", **bar_options(transient=True))

    def on_step_end(self, args, state, control, **kwargs):
        self.report.step_seconds.append(time.perf_counter() - self.step_began)
        self.report.steps = state.global_step
        self.bar.update(1)
        if self.seconds is not None and time.perf_counter() - self.began > self.seconds:
            self.report.stopped_by = "time budget"
            control.should_training_stop = True
        elif self.probe and self.every and state.global_step % self.every == 0:
            model = kwargs["model"]
            model.eval()
            with scored_as_saved(model):
                stop = self.probe(state.global_step)
            model.train()
            if stop:
                self.report.stopped_by = "pruned"
                control.should_training_stop = True
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss", (logs or {}).get("train_loss"))
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingError(f"the training loss became {float(loss)} by step {state.global_step}: training "
                                f"diverged at learning rate {args.learning_rate:g}. Lower `learning_rate` in the "
                                "space (or raise warmup_steps); no score is recorded for this trial.")
        if logs and "loss" in logs:
            self.report.loss_curve.append((state.global_step, float(logs["loss"])))
            self.bar.set_postfix(loss=f"{logs['loss']:.3f}", refresh=False)  # the next step draws it

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
