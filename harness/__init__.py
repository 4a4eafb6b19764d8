"""Evaluation-driven experiment harness: does fine-tuning beat prompting for this task, and does it pay?"""

__version__ = "0.2.0"
